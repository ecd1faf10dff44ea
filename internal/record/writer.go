package record

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/outfile"
)

// Compression of a recording file.
type Compression int

const (
	CompressNone Compression = iota
	CompressGzip
	CompressZstd
)

func (c Compression) String() string {
	switch c {
	case CompressGzip:
		return "gzip"
	case CompressZstd:
		return "zstd"
	}
	return "none"
}

// CompressionFor picks the compression from the file name, as the tools
// that will read the file (zcat, zstdcat) expect.
func CompressionFor(path string) Compression {
	switch {
	case strings.HasSuffix(path, ".gz"):
		return CompressGzip
	case strings.HasSuffix(path, ".zst"):
		return CompressZstd
	}
	return CompressNone
}

// FlushInterval bounds how much a crash can lose: records older than this
// have been handed to the kernel and survive kill -9.
const FlushInterval = 500 * time.Millisecond

// file is what the writer needs from *os.File; tests substitute a file
// that fills up.
type file interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

// countingFile tracks the file size, which the status line shows and which
// is where the file is cut back to after a failed write.
type countingFile struct {
	f file
	n int64
}

func (c *countingFile) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	c.n += int64(n)
	return n, err
}

type flusher interface {
	io.Writer
	Flush() error
	Close() error
}

// Writer writes one recording. Its methods are safe to call from several
// goroutines: the tracer's handler writes events while a timer flushes.
type Writer struct {
	path string

	mu    sync.Mutex
	cf    *countingFile
	comp  flusher // nil when uncompressed
	buf   *bufio.Writer
	line  []byte
	dirty bool
	// good is the file size after the last successful flush. Everything up
	// to it is whole records (and, compressed, a decodable stream), so a
	// failed write cuts the file back to it.
	good int64
	// pending is the uncompressed bytes written since the last flush:
	// what the file may still grow by, compressed, before Flush returns.
	pending int64
	records uint64
	events  uint64
	err     error
	closed  bool

	stop chan struct{}
	done chan struct{}
}

// Stats is a snapshot for the status line.
type Stats struct {
	Records   uint64
	Events    uint64
	FileBytes int64
	// Pending is the uncompressed bytes of the records not yet flushed.
	Pending int64
}

// Create creates path with mode 0600 (recordings show which processes talk
// to which hosts), writes the header and flushes it, so that even a
// recorder killed at once leaves a readable file. An existing file at path
// is replaced; see CreateFile.
func Create(path string, h *Header) (*Writer, error) {
	return CreateFile(path, true, h)
}

// CreateFile is Create that refuses an existing path unless force. A file
// it replaces is never truncated: the new recording is a new file, put at
// path once its header is written, so a reader of the old one (a report
// running) reads it whole, and the old file's other links keep it.
func CreateFile(path string, force bool, h *Header) (*Writer, error) {
	f, err := outfile.Create(path, force)
	if err != nil {
		return nil, err
	}
	w, err := newWriter(path, f, CompressionFor(path), h)
	if err == nil {
		err = f.Commit()
	}
	if err != nil {
		if w != nil {
			w.Close(nil)
		}
		f.Abort()
		return nil, err
	}
	return w, nil
}

// streamFile is a stream (a pipe, an HTTP response) that a recording is
// written to: the caller closes it, and a failed write cannot be cut back.
type streamFile struct{ io.Writer }

func (streamFile) Sync() error          { return nil }
func (streamFile) Truncate(int64) error { return nil }
func (streamFile) Close() error         { return nil }

// NewStreamWriter writes a recording to out, compressed as c, and
// flushes the header at once. Close writes the footer and finishes the
// compressed stream; closing out is the caller's.
func NewStreamWriter(out io.Writer, name string, c Compression, h *Header) (*Writer, error) {
	return newWriter(name, streamFile{out}, c, h)
}

func newWriter(path string, f file, c Compression, h *Header) (*Writer, error) {
	w := &Writer{path: path, cf: &countingFile{f: f}, stop: make(chan struct{}), done: make(chan struct{})}
	var sink io.Writer = w.cf
	switch c {
	case CompressGzip:
		gz := gzip.NewWriter(w.cf)
		w.comp, sink = gz, gz
	case CompressZstd:
		// One encoder goroutine is plenty for an event stream and keeps
		// Flush cheap.
		zw, err := zstd.NewWriter(w.cf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("create recording: %w", err)
		}
		w.comp, sink = zw, zw
	}
	w.buf = bufio.NewWriterSize(sink, 64<<10)

	h.Kind = KindHeader
	h.Format = FormatName
	h.FormatVersion = FormatVersion
	h.SchemaVersion = EventSchemaVersion
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	w.mu.Lock()
	err = w.writeLineLocked(b)
	if err == nil {
		err = w.flushLocked()
	}
	w.mu.Unlock()
	if err != nil {
		return nil, err
	}
	go w.flushLoop()
	return w, nil
}

func (w *Writer) flushLoop() {
	defer close(w.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			if w.dirty && w.err == nil && !w.closed {
				_ = w.flushLocked()
			}
			w.mu.Unlock()
		}
	}
}

// WriteEvent appends one event record.
func (w *Writer) WriteEvent(e *events.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("write event: recording already closed")
	}
	w.line = events.AppendJSON(w.line[:0], e)
	if err := w.writeLineLocked(w.line); err != nil {
		return err
	}
	w.events++
	return nil
}

// WriteDiagnosis appends one diagnosis record. Readers replaying the
// events diagnose them again; these records are for jq and for tools
// that read the file without sendtrace.
func (w *Writer) WriteDiagnosis(d *diagnose.Diagnosis) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("write diagnosis: recording already closed")
	}
	w.line = diagnose.AppendJSON(w.line[:0], d)
	return w.writeLineLocked(w.line)
}

func (w *Writer) writeLineLocked(b []byte) error {
	if w.err != nil {
		return w.err
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if _, err := w.buf.Write(b); err != nil {
		return w.failLocked(err)
	}
	if err := w.buf.WriteByte('\n'); err != nil {
		return w.failLocked(err)
	}
	w.records++
	w.pending += int64(len(b)) + 1
	w.dirty = true
	return nil
}

func (w *Writer) flushLocked() error {
	if w.err != nil {
		return w.err
	}
	if err := w.buf.Flush(); err != nil {
		return w.failLocked(err)
	}
	if w.comp != nil {
		if err := w.comp.Flush(); err != nil {
			return w.failLocked(err)
		}
	}
	w.good = w.cf.n
	w.pending = 0
	w.dirty = false
	return nil
}

// failLocked makes the first write error sticky and cuts the file back to
// the last flushed record, so that what remains is a valid recording
// without a footer rather than one ending in half a record.
func (w *Writer) failLocked(err error) error {
	if w.err != nil {
		return w.err
	}
	// The path is said once, here, rather than again by the PathError.
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		w.err = fmt.Errorf("write recording %s: %w: the disk is full; the file keeps the header and the records flushed before (%d bytes); free space and record again", w.path, err, w.good)
	} else {
		w.err = fmt.Errorf("write recording %s: %w; the file keeps the records flushed before (%d bytes)", w.path, err, w.good)
	}
	_ = w.cf.f.Truncate(w.good)
	w.cf.n = w.good
	return w.err
}

// Flush hands every record written so far to the kernel.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

// Err returns the first write error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stats returns counts for the status line.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Stats{Records: w.records, Events: w.events, FileBytes: w.cf.n, Pending: w.pending}
}

// Events returns how many event records were written.
func (w *Writer) Events() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events
}

// Close writes the footer, finishes the compressed stream, fsyncs and
// closes the file. With a nil footer, or after a write error, it closes
// without a footer: readers then report the recording as incomplete, which
// is the truth.
func (w *Writer) Close(f *Footer) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done

	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.err
	if err == nil && f != nil {
		f.Kind = KindFooter
		b, merr := json.Marshal(f)
		if merr != nil {
			err = fmt.Errorf("encode footer: %w", merr)
		} else {
			err = w.writeLineLocked(b)
		}
	}
	if err == nil {
		err = w.flushLocked()
	}
	if err == nil && w.comp != nil {
		if cerr := w.comp.Close(); cerr != nil {
			err = w.failLocked(cerr)
		} else {
			w.good = w.cf.n
		}
	}
	if err == nil {
		if serr := w.cf.f.Sync(); serr != nil {
			err = fmt.Errorf("fsync recording %s: %w", w.path, serr)
		}
	}
	if cerr := w.cf.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close recording %s: %w", w.path, cerr)
	}
	return err
}
