package render

import (
	"io"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"golang.org/x/sys/unix"
)

// Column widths. The aligned columns take 113 cells, so they fit any
// terminal that shows the details at all; the free-form tail (errno, then
// the kind's details) follows. Wider values (IPv6 addresses, long task
// names) push the rest of their line out rather than being cut, because a
// truncated address is worse than a ragged line.
const (
	wTime  = 12 // 15:04:05.000
	wKind  = 13 // receive_reset
	wProc  = 18 // comm/pid; a 15-byte comm with a long pid overflows
	wProto = 5
	wConn  = 40 // most IPv4 pairs; the longest take 46
	wState = 11 // ESTABLISHED
	wBytes = 7
)

// Text writes one aligned line per event, for a person watching live.
// Each line goes to the underlying writer in a single Write, so lines
// appear as they happen and never interleave with other output.
type Text struct {
	w      io.Writer
	loc    *time.Location
	buf    []byte
	header bool
	err    error
}

// NewText returns a Text writing to w in the local time zone.
func NewText(w io.Writer) *Text {
	return &Text{w: w, loc: time.Local, buf: make([]byte, 0, 256)}
}

// SetLocation changes the time zone times are shown in.
func (t *Text) SetLocation(loc *time.Location) { t.loc = loc }

// HeaderLine is the column header Text writes before the first event.
func HeaderLine() string {
	b := make([]byte, 0, 160)
	for _, c := range [...]struct {
		name  string
		width int
	}{
		{"TIME", wTime}, {"KIND", wKind}, {"COMM/PID", wProc}, {"PROTO", wProto},
		{"SRC -> DST", wConn}, {"STATE", wState},
	} {
		start := len(b)
		b = append(b, c.name...)
		b = padRight(b, start, c.width)
	}
	b = padLeft(b, []byte("BYTES"), wBytes)
	b = append(b, "ERRNO / DETAILS"...)
	return string(b)
}

// WriteHeader writes the header line now; Write does it before the first
// event if it has not been done.
func (t *Text) WriteHeader() error {
	if t.err != nil {
		return t.err
	}
	t.header = true
	_, t.err = io.WriteString(t.w, HeaderLine()+"\n")
	return t.err
}

// Write writes one event line. After a write error every call returns
// that error.
func (t *Text) Write(e *events.Event) error {
	if !t.header {
		if err := t.WriteHeader(); err != nil {
			return err
		}
	}
	if t.err != nil {
		return t.err
	}
	t.buf = AppendTextLine(t.buf[:0], e, t.loc)
	t.buf = append(t.buf, '\n')
	_, t.err = t.w.Write(t.buf)
	return t.err
}

// Flush exists to satisfy Stream; Text does not buffer.
func (t *Text) Flush() error { return t.err }

// AppendTextLine appends e's text line, without a newline.
func AppendTextLine(b []byte, e *events.Event, loc *time.Location) []byte {
	if loc == nil {
		loc = time.Local
	}
	start := len(b)
	b = e.Time.In(loc).AppendFormat(b, "15:04:05.000")
	b = padRight(b, start, wTime)

	start = len(b)
	b = append(b, e.Kind.String()...)
	b = padRight(b, start, wKind)

	start = len(b)
	b = append(b, process(e.Comm, e.PID, e.OwnerKnown)...)
	b = padRight(b, start, wProc)

	start = len(b)
	if p := events.ProtoName(e.Protocol); p != "" {
		b = append(b, p...)
	} else {
		b = append(b, '-')
	}
	b = padRight(b, start, wProto)

	start = len(b)
	b = append(b, addrPort(e.Src)...)
	b = append(b, " -> "...)
	b = append(b, addrPort(e.Dst)...)
	b = padRight(b, start, wConn)

	start = len(b)
	if s := events.StateName(e.State); s != "" {
		b = append(b, s...)
	} else {
		b = append(b, '-')
	}
	b = padRight(b, start, wState)

	var num [20]byte
	switch {
	case e.Bytes != 0 || e.Kind == events.KindSendError || e.Kind == events.KindRetransmit:
		b = padLeft(b, strconv.AppendUint(num[:0], uint64(e.Bytes), 10), wBytes)
	default:
		b = padLeft(b, []byte("-"), wBytes)
	}

	detailStart := len(b)
	if e.Errno != 0 {
		b = append(b, events.ErrnoString(e.Errno)...)
	}
	b = appendDetails(b, e)
	// Drop the separator space when a line has nothing after BYTES.
	if len(b) == detailStart {
		b = b[:len(b)-1]
	}
	return b
}

func appendKV(b []byte, key string, val []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != ' ' {
		b = append(b, ' ')
	}
	b = append(b, key...)
	b = append(b, '=')
	return append(b, val...)
}

func appendKVu(b []byte, key string, v uint64) []byte {
	var num [20]byte
	return appendKV(b, key, strconv.AppendUint(num[:0], v, 10))
}

func appendKVd(b []byte, key string, d time.Duration) []byte {
	var num [24]byte
	return appendKV(b, key, appendDuration(num[:0], d))
}

func appendDetails(b []byte, e *events.Event) []byte {
	tcp := e.Protocol == unix.IPPROTO_TCP
	switch e.Kind {
	case events.KindSendError:
		if e.Syscall != "" {
			b = appendKV(b, "syscall", []byte(printable(e.Syscall)))
		}
		// Both layers is the usual case; only the unusual ones are worth
		// the width (layer=syscall: the error came from outside the
		// TCP/IP stack).
		if e.Layer != events.LayerNone && e.Layer != events.LayerBoth {
			b = appendKV(b, "layer", []byte(e.Layer.String()))
		}
		if e.StackErrno != 0 && e.StackErrno != e.Errno {
			b = appendKV(b, "stack_errno", []byte(events.ErrnoName(e.StackErrno)))
		}
	case events.KindRetransmit:
		b = appendKVu(b, "retrans", uint64(e.Retransmits))
		b = appendKVu(b, "backoff", uint64(e.Backoff))
		b = appendKVd(b, "rto", e.RTO)
		b = appendKVd(b, "srtt", e.SRTT)
		b = appendKVu(b, "cwnd", uint64(e.Cwnd))
		b = appendKVu(b, "send_q", uint64(e.SendQ))
		if e.RetransErr != 0 {
			b = appendKV(b, "err", []byte(events.ErrnoName(e.RetransErr)))
		}
		// The timing below matters less than the retransmit state and
		// would push the line past one screen.
		return b
	case events.KindErrorReport:
		if tcp && e.Retransmits != 0 {
			b = appendKVu(b, "retrans", uint64(e.Retransmits))
		}
	case events.KindSendReset:
		if e.ResetReason != 0 {
			b = appendKVu(b, "reason", uint64(e.ResetReason))
		}
	case events.KindStateChange:
		b = appendKV(b, "from", []byte(events.StateName(e.OldState)))
	}
	if tcp {
		if e.SinceSend >= 0 {
			b = appendKVd(b, "since_send", e.SinceSend)
		}
		if e.SinceRecv >= 0 {
			b = appendKVd(b, "since_recv", e.SinceRecv)
		}
	}
	return b
}
