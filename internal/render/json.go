package render

import (
	"bufio"
	"io"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/session"
)

// JSON is the sink for programs: events and diagnoses as JSON Lines
// (docs/json-schema.md). Output is buffered so a busy stream costs one
// write per buffer, not per event; the live session flushes it whenever
// the stream goes quiet.
type JSON struct {
	w   *bufio.Writer
	buf []byte
	err error
}

// NewJSON returns a JSON writer on w.
func NewJSON(w io.Writer) *JSON {
	return &JSON{w: bufio.NewWriterSize(w, 64<<10), buf: make([]byte, 0, 1024)}
}

// Begin writes nothing: the stream is events only.
func (j *JSON) Begin(*session.Description) error { return nil }

// Event buffers one event line.
func (j *JSON) Event(e *events.Event) error { return j.Write(e) }

// Write buffers one event line. Errors from the underlying writer are
// sticky and returned by every later call.
func (j *JSON) Write(e *events.Event) error {
	return j.line(events.AppendJSON(j.buf[:0], e))
}

var _ pipeline.DiagnosisSink = (*JSON)(nil)

// Diagnosis buffers one {"kind":"diagnosis",...} line.
func (j *JSON) Diagnosis(d *diagnose.Diagnosis) error {
	return j.line(diagnose.AppendJSON(j.buf[:0], d))
}

func (j *JSON) line(b []byte) error {
	j.buf = append(b, '\n')
	if j.err == nil {
		_, j.err = j.w.Write(j.buf)
	}
	return j.err
}

// End flushes what is buffered.
func (j *JSON) End(*session.End) error { return j.Flush() }

// Flush writes out buffered lines.
func (j *JSON) Flush() error {
	if j.err == nil {
		j.err = j.w.Flush()
	}
	return j.err
}
