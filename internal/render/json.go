package render

import (
	"bufio"
	"io"

	"github.com/sendtrace/sendtrace/internal/events"
)

// JSON writes events as JSON Lines (docs/json-schema.md). Output is
// buffered so a busy stream costs one write per buffer, not per event;
// call Flush at the end, and periodically when a reader follows the
// stream live.
type JSON struct {
	w   *bufio.Writer
	buf []byte
}

// NewJSON returns a JSON writer on w.
func NewJSON(w io.Writer) *JSON {
	return &JSON{w: bufio.NewWriterSize(w, 64<<10), buf: make([]byte, 0, 1024)}
}

// Write buffers one event line. Errors from the underlying writer are
// sticky and returned by every later Write and Flush.
func (j *JSON) Write(e *events.Event) error {
	j.buf = events.AppendJSON(j.buf[:0], e)
	j.buf = append(j.buf, '\n')
	_, err := j.w.Write(j.buf)
	return err
}

// Flush writes out buffered lines.
func (j *JSON) Flush() error { return j.w.Flush() }
