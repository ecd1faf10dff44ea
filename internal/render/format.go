// Package render turns events into what the person on call reads: a live
// text stream, JSON Lines, and an end-of-run summary.
package render

import (
	"net/netip"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sendtrace/sendtrace/internal/events"
)

// Stream is what the live writers have in common.
type Stream interface {
	Write(e *events.Event) error
	Flush() error
}

// appendPrintable appends s with everything a terminal might act on
// escaped. Task names are chosen by the process, so a hostile or buggy one
// could otherwise move the cursor or recolour the screen. Backslashes are
// escaped too, so the escapes stay unambiguous.
func appendPrintable(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = appendHexByte(dst, s[i])
		case r == '\\':
			dst = append(dst, '\\', '\\')
		case r == ' ' || r != utf8.RuneError && unicode.IsPrint(r):
			dst = append(dst, s[i:i+size]...)
		default:
			for j := i; j < i+size; j++ {
				dst = appendHexByte(dst, s[j])
			}
		}
		i += size
	}
	return dst
}

func appendHexByte(dst []byte, c byte) []byte {
	const hex = "0123456789abcdef"
	return append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
}

func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return string(appendPrintable(nil, s))
		}
	}
	return s
}

// process names an owner the way both the stream and the summary show it.
func process(comm string, pid uint32, known bool) string {
	if !known && pid == 0 {
		return "?"
	}
	if comm == "" {
		comm = "?"
	}
	return printable(comm) + "/" + strconv.FormatUint(uint64(pid), 10)
}

func addrPort(a netip.AddrPort) string {
	if !a.IsValid() {
		return "?"
	}
	return a.String()
}

// duration prints a compact, human form with about three significant
// digits: 850us, 12.3ms, 3.2s, 4m12s.
func duration(d time.Duration) string {
	return string(appendDuration(nil, d))
}

func appendDuration(dst []byte, d time.Duration) []byte {
	if d < 0 {
		return append(dst, '?')
	}
	var unit string
	var v float64
	switch {
	case d < time.Microsecond:
		return append(strconv.AppendInt(dst, int64(d), 10), "ns"...)
	case d < time.Millisecond:
		v, unit = float64(d)/1e3, "us"
	case d < time.Second:
		v, unit = float64(d)/1e6, "ms"
	case d < time.Minute:
		v, unit = float64(d)/1e9, "s"
	default:
		return append(dst, d.Round(time.Second).String()...)
	}
	prec := 0
	if v < 10 {
		prec = 2
	} else if v < 100 {
		prec = 1
	}
	b := strconv.AppendFloat(dst, v, 'f', prec, 64)
	// Trim a fraction that adds nothing ("12.0ms" -> "12ms").
	if prec > 0 {
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
		if b[len(b)-1] == '.' {
			b = b[:len(b)-1]
		}
	}
	return append(b, unit...)
}

// padRight pads dst from start to width display cells, or by one space
// when the field is already wider, so columns never run together.
func padRight(dst []byte, start, width int) []byte {
	n := utf8.RuneCount(dst[start:])
	if n >= width {
		return append(dst, ' ')
	}
	for ; n < width; n++ {
		dst = append(dst, ' ')
	}
	return append(dst, ' ')
}

func padLeft(dst []byte, s []byte, width int) []byte {
	for n := utf8.RuneCount(s); n < width; n++ {
		dst = append(dst, ' ')
	}
	dst = append(dst, s...)
	return append(dst, ' ')
}
