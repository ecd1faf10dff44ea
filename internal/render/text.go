package render

import (
	"bufio"
	"io"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Column widths. The aligned columns take 118 cells, so they fit any
// terminal that shows the details at all; the free-form tail (errno, then
// the kind's details) follows. Wider values (IPv6 addresses, long task
// names) push the rest of their line out rather than being cut, because a
// truncated address is worse than a ragged line.
const (
	wTime  = 12 // 15:04:05.000
	wKind  = 13 // receive_reset
	wProc  = 23 // comm/pid: a 15-byte comm, "/", and a pid up to pid_max (4194304)
	wProto = 5
	wConn  = 40 // most IPv4 pairs; the longest take 46
	wState = 11 // ESTABLISHED
	wBytes = 7
)

// Text is the sink a person watching live reads: one aligned line per
// event, each diagnosis on the line after the event that concluded it,
// except that a connection's retransmits and drops print at most one line
// a second (see bursts). Lines are buffered; the live session flushes them
// whenever the stream goes quiet, and whole lines never interleave with
// other output.
type Text struct {
	w      *bufio.Writer
	loc    *time.Location
	buf    []byte
	header bool
	err    error

	bursts  bursts
	nextDue time.Time        // when the bursts are next looked at on an event
	now     func() time.Time // the flush's clock
}

// NewText returns a Text writing to w in the local time zone.
func NewText(w io.Writer) *Text {
	return &Text{w: bufio.NewWriterSize(w, 64<<10), loc: time.Local, buf: make([]byte, 0, 256), now: time.Now}
}

// Begin writes the column header.
func (t *Text) Begin(*session.Description) error { return t.WriteHeader() }

// Event writes one event line. A connection's retransmits and drops are
// summed into one line a second; any other event of the connection first
// prints the sums before it, so the stream stays in causal order.
func (t *Text) Event(e *events.Event) error {
	// A stream that never goes quiet is never flushed: the event clock
	// ends the seconds of the other connections.
	if !e.Time.Before(t.nextDue) {
		t.nextDue = e.Time.Add(BurstEvery / 4)
		t.writeBursts(t.bursts.due(e.Time))
	}
	if !aggregated(e) {
		t.writeBursts(t.bursts.take(e))
		return t.Write(e)
	}
	full, due := t.bursts.add(e)
	if due != nil {
		t.writeBursts([]burst{*due})
	}
	if full {
		return t.Write(e)
	}
	return t.err
}

func (t *Text) writeBursts(bs []burst) {
	for i := range bs {
		if !t.header {
			t.WriteHeader()
		}
		if t.err != nil {
			return
		}
		t.buf = append(appendBurstLine(t.buf[:0], &bs[i], t.loc), '\n')
		_, t.err = t.w.Write(t.buf)
	}
}

var _ pipeline.DiagnosisSink = (*Text)(nil)

// Diagnosis writes the diagnosis line under the event that concluded it,
// after the connection's summed retransmits.
func (t *Text) Diagnosis(d *diagnose.Diagnosis) error {
	if d.Cookie != 0 {
		t.writeBursts(t.bursts.take(&events.Event{Cookie: d.Cookie}))
	}
	if t.err != nil {
		return t.err
	}
	t.buf = append(diagnose.AppendText(t.buf[:0], d), '\n')
	_, t.err = t.w.Write(t.buf)
	return t.err
}

// End prints every sum still open, then flushes.
func (t *Text) End(*session.End) error {
	t.writeBursts(t.bursts.due(time.Time{}))
	return t.Flush()
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
		b = format.PadRight(b, start, c.width)
	}
	b = format.PadLeft(b, []byte("BYTES"), wBytes)
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

// Flush prints the sums whose second is over, then writes out buffered
// lines.
func (t *Text) Flush() error {
	t.writeBursts(t.bursts.due(t.now()))
	if t.err == nil {
		t.err = t.w.Flush()
	}
	return t.err
}

// AppendTextLine appends e's text line, without a newline.
func AppendTextLine(b []byte, e *events.Event, loc *time.Location) []byte {
	var num [20]byte
	var bytes []byte
	switch {
	case e.Bytes != 0 || e.Kind == events.KindSendError || e.Kind == events.KindRetransmit:
		bytes = strconv.AppendUint(num[:0], uint64(e.Bytes), 10)
	default:
		bytes = []byte("-")
	}
	b = appendColumns(b, e, loc, bytes)

	detailStart := len(b)
	if e.Errno != 0 {
		b = append(b, events.ErrnoString(e.Errno)...)
	}
	b = format.AppendDetails(b, e)
	return endLine(b, e, detailStart)
}

// appendColumns appends the aligned columns of e's line, up to and with
// the BYTES column and the space after it.
func appendColumns(b []byte, e *events.Event, loc *time.Location, bytes []byte) []byte {
	if loc == nil {
		loc = time.Local
	}
	start := len(b)
	b = e.Time.In(loc).AppendFormat(b, "15:04:05.000")
	b = format.PadRight(b, start, wTime)

	start = len(b)
	b = append(b, e.Kind.String()...)
	b = format.PadRight(b, start, wKind)

	start = len(b)
	b = append(b, format.Process(e.Comm, e.PID, e.OwnerKnown)...)
	b = format.PadRight(b, start, wProc)

	start = len(b)
	if p := events.ProtoName(e.Protocol); p != "" {
		b = append(b, p...)
	} else {
		b = append(b, '-')
	}
	b = format.PadRight(b, start, wProto)

	start = len(b)
	b = append(b, format.Addr(e.Src)...)
	b = append(b, " -> "...)
	b = append(b, format.Addr(e.Dst)...)
	b = format.PadRight(b, start, wConn)

	start = len(b)
	if s := events.StateName(e.State); s != "" {
		b = append(b, s...)
	} else {
		b = append(b, '-')
	}
	b = format.PadRight(b, start, wState)
	return format.PadLeft(b, bytes, wBytes)
}

// endLine adds the workload to a line whose details start at
// detailStart, and drops the separator space when there are none.
func endLine(b []byte, e *events.Event, detailStart int) []byte {
	b = appendWorkload(b, e.Workload, len(b) > detailStart)
	if len(b) == detailStart {
		b = b[:len(b)-1]
	}
	return b
}

// appendWorkload names a container's or unit's workload at the end of the
// line; a plain process is already named in the PROCESS column.
func appendWorkload(b []byte, w *events.Workload, after bool) []byte {
	if w == nil || w.Kind == events.WorkloadProcess {
		return b
	}
	if after {
		b = append(b, ' ')
	}
	b = append(b, "workload="...)
	return format.AppendPrintable(b, w.String())
}
