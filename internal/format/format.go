// Package format is the one home of how sendtrace writes things for
// people: owners, durations, addresses, escaped names, an event's
// details and the style of its tables. The live stream, the summary,
// diagnoses and reports all use it, so they agree.
package format

import (
	"net/netip"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// AppendPrintable appends Printable(s).
func AppendPrintable(dst []byte, s string) []byte {
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

// Printable is s with everything a terminal might act on escaped, as
// \xNN for each byte: the C0 controls (newline and tab among them), DEL,
// the C1 controls U+0080 to U+009F, the other runes that print nothing
// (format characters such as bidi overrides, separators other than the
// space) and bytes that are not UTF-8. A backslash is written \\, so the
// escapes stay unambiguous: a host named "vm" ESC "]0;PWNED" BEL, which
// would retitle the window, prints as vm\x1b]0;PWNED\x07.
//
// It is the one escaping function of everything sendtrace writes for a
// terminal: every string that comes from a recording, from the kernel
// (task names, drop reasons, devices) or from a user's flag or file path
// goes through it (or AppendPrintable) before it reaches the text of
// report, diff, the live stream, summaries, warnings and error lines.
// Recordings travel, so their strings are someone else's input; a task
// names itself. JSON output does not use it: its encoders escape control
// characters themselves, and keep the data as it was.
func Printable(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return string(AppendPrintable(nil, s))
		}
	}
	return s
}

// Process names a socket owner as "comm/pid", or "?" when sendtrace has
// not seen the owner.
func Process(comm string, pid uint32, known bool) string {
	if !known && pid == 0 {
		return "?"
	}
	if comm == "" {
		comm = "?"
	}
	return Printable(comm) + "/" + strconv.FormatUint(uint64(pid), 10)
}

// Addr is an address as people read it: "?" when unknown.
func Addr(a netip.AddrPort) string {
	if !a.IsValid() {
		return "?"
	}
	if a.Addr().Zone() != "" {
		// An IPv6 zone read from a recording is any text at all.
		return Printable(a.String())
	}
	return a.String()
}

// Duration prints a compact, human form with about three significant
// digits: 850us, 12.3ms, 3.2s, 4m12s.
func Duration(d time.Duration) string {
	return string(AppendDuration(nil, d))
}

// AppendDuration appends Duration(d).
func AppendDuration(dst []byte, d time.Duration) []byte {
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

// PadRight pads dst from start to width display cells, or by one space
// when the field is already wider, so columns never run together.
func PadRight(dst []byte, start, width int) []byte {
	n := utf8.RuneCount(dst[start:])
	if n >= width {
		return append(dst, ' ')
	}
	for ; n < width; n++ {
		dst = append(dst, ' ')
	}
	return append(dst, ' ')
}

// PadLeft right-aligns s in width display cells, then adds a space.
func PadLeft(dst []byte, s []byte, width int) []byte {
	for n := utf8.RuneCount(s); n < width; n++ {
		dst = append(dst, ' ')
	}
	dst = append(dst, s...)
	return append(dst, ' ')
}
