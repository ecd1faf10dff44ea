package record

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/sendtrace/sendtrace/internal/events"
)

// MaxLineBytes bounds one record. Real records are a few hundred bytes; a
// longer line means the file is not a recording, and reading it whole
// could exhaust memory.
const MaxLineBytes = 1 << 20

// maxZstdWindow bounds the decoder's memory for foreign zstd files.
const maxZstdWindow = 64 << 20

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// FormatError says where a file stops being a valid recording. Line is
// 1-based; Offset is the byte offset of the start of that line in the
// (decompressed) stream.
type FormatError struct {
	Line       int
	Offset     int64
	Compressed bool
	Msg        string
}

func (e *FormatError) Error() string {
	where := "byte"
	if e.Compressed {
		where = "decompressed byte"
	}
	if e.Line > 0 {
		return fmt.Sprintf("line %d (%s offset %d): %s", e.Line, where, e.Offset, e.Msg)
	}
	return fmt.Sprintf("%s offset %d: %s", where, e.Offset, e.Msg)
}

// Reader reads a recording record by record.
type Reader struct {
	Header *Header
	// Footer is set once the footer has been read; nil at the end means the
	// recording was not stopped cleanly.
	Footer *Footer
	// Truncated is set when the file ends inside a record or inside a
	// compressed block, as after kill -9 or a full disk.
	Truncated bool
	// StreamCut is set when the compressed stream itself was cut, rather
	// than ending as a finished stream does: CutAt is then the byte of the
	// file where it stops (its length).
	StreamCut bool
	CutAt     int64
	// Skipped counts records of kinds this version does not know, which
	// newer versions may add without changing the format version.
	Skipped int
	// EventsRead counts event records returned by Next.
	EventsRead uint64
	// Disconnects counts the error reports of failed connects resetting
	// their sockets (events.IsDisconnectReport) that Next left out: an
	// older sendtrace recorded them.
	Disconnects uint64

	br          *bufio.Reader
	compression Compression
	line        int   // number of the last line read
	off         int64 // offset of the next line
	lineOff     int64 // offset of the last line read
	done        bool
	buf         []byte
	partial     []byte // start of a truncated last line, for messages
	closer      io.Closer
	decoder     *zstd.Decoder
	raw         *countingReader // the file's bytes, before decompression
}

// countingReader counts the bytes read from the file.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Open opens a recording, plain or compressed (told by its first bytes,
// not its name), and reads its header.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.closer = f
	return r, nil
}

// Close closes the file opened by Open.
func (r *Reader) Close() error {
	if r.decoder != nil {
		r.decoder.Close()
	}
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Compression reports how the file was compressed.
func (r *Reader) Compression() Compression { return r.compression }

// NewReader reads the header from r, which may be plain or compressed.
func NewReader(in io.Reader) (*Reader, error) {
	r := &Reader{raw: &countingReader{r: in}}
	raw := bufio.NewReader(r.raw)
	magic, _ := raw.Peek(4)
	var src io.Reader = raw
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		gz, err := gzip.NewReader(raw)
		if err != nil {
			return nil, &FormatError{Offset: 0, Msg: fmt.Sprintf("bad gzip header: %v", err)}
		}
		// A recording is one gzip member; concatenated members would be a
		// different file appended to it.
		gz.Multistream(false)
		src, r.compression = gz, CompressGzip
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(raw, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(maxZstdWindow))
		if err != nil {
			return nil, &FormatError{Offset: 0, Msg: fmt.Sprintf("bad zstd stream: %v", err)}
		}
		src, r.compression = zr, CompressZstd
		r.decoder = zr
	}
	r.br = bufio.NewReaderSize(src, 64<<10)

	line, err := r.readLine()
	if err != nil {
		return nil, err
	}
	if line == nil {
		if r.Truncated {
			cut := ""
			if r.StreamCut {
				cut = fmt.Sprintf("; the %s stream itself is cut off at byte %d, where the file ends", r.compression, r.CutAt)
			}
			if bytes.HasPrefix(r.partial, []byte(`{"kind":"header"`)) {
				return nil, r.errf("the file ends inside the header: the recorder stopped before writing it%s", cut)
			}
			if r.StreamCut {
				// A cut block decompresses to nothing at all, so
				// what it held cannot be told: say where it stops.
				return nil, r.errf("the %s stream is cut off at byte %d, where the file ends, before its first line is whole: "+
					"nothing in it can be read (the file was not finished, or was copied before it was)", r.compression, r.CutAt)
			}
			return nil, r.errf("not a sendtrace recording (no complete first line)")
		}
		return nil, &FormatError{Compressed: r.compression != CompressNone, Msg: "empty file: not a sendtrace recording (no header)"}
	}
	h, err := r.parseHeader(line)
	if err != nil {
		return nil, err
	}
	r.Header = h
	return r, nil
}

func (r *Reader) errf(format string, args ...any) error {
	return &FormatError{Line: r.line, Offset: r.lineOff, Compressed: r.compression != CompressNone, Msg: fmt.Sprintf(format, args...)}
}

func (r *Reader) parseHeader(line []byte) (*Header, error) {
	if !looksLikeJSONObject(line) {
		return nil, r.errf("not a sendtrace recording (the first line is not a JSON object)")
	}
	kind, err := events.PeekKind(line)
	if err != nil {
		return nil, r.errf("not a sendtrace recording: %v", err)
	}
	if kind != KindHeader {
		if _, ok := events.ParseKind(kind); ok {
			return nil, r.errf("this is a sendtrace event stream (-o json), not a recording: it has no header; make recordings with `sendtrace record -o FILE`")
		}
		return nil, r.errf("not a sendtrace recording: the first record has kind %q, want %q", kind, KindHeader)
	}
	var h Header
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, r.errf("bad header: %v", err)
	}
	if h.Format != FormatName {
		return nil, r.errf("not a sendtrace recording: header format is %q, want %q", h.Format, FormatName)
	}
	if h.FormatVersion < 1 {
		return nil, r.errf("bad header: format_version %d", h.FormatVersion)
	}
	if h.FormatVersion > FormatVersion {
		return nil, r.errf("recording format version %d is newer than this sendtrace reads (%d): use a newer sendtrace", h.FormatVersion, FormatVersion)
	}
	return &h, nil
}

// Next reads the next event into e. It returns false at the end of the
// recording: after the footer, at the end of a file without one, or at a
// truncated last record. Check Footer and Truncated then.
func (r *Reader) Next(e *events.Event) (bool, error) {
	for !r.done {
		line, err := r.readLine()
		if err != nil {
			r.done = true
			return false, err
		}
		if line == nil {
			r.done = true
			return false, nil
		}
		if r.Footer != nil {
			r.done = true
			return false, r.errf("a record follows the footer: the file was appended to after the recording ended")
		}
		if !looksLikeJSONObject(line) {
			r.done = true
			return false, r.errf("corrupt record: not a JSON object")
		}
		kind, err := events.PeekKind(line)
		if err != nil {
			r.done = true
			return false, r.errf("corrupt record: %v", err)
		}
		switch kind {
		case KindHeader:
			r.done = true
			return false, r.errf("a second header: two recordings were joined into one file")
		case KindFooter:
			var f Footer
			if err := json.Unmarshal(line, &f); err != nil {
				r.done = true
				return false, r.errf("corrupt footer: %v", err)
			}
			f.dropDisconnectReports()
			r.Footer = &f
			continue
		case KindDiagnosis:
			// Replays diagnose the events again, as a live session did.
			continue
		}
		if _, ok := events.ParseKind(kind); !ok || kind == events.KindUnknown.String() {
			r.Skipped++
			continue
		}
		*e = events.Event{}
		if err := events.ParseJSON(line, e); err != nil {
			r.done = true
			return false, r.errf("corrupt %s record: %v", kind, err)
		}
		if events.IsDisconnectReport(e) {
			// Recorded before sendtrace left out the error report of a
			// failed connect() resetting its socket, which reports no
			// error; the footer's totals leave it out too.
			r.Disconnects++
			continue
		}
		r.EventsRead++
		return true, nil
	}
	return false, nil
}

// readLine returns the next complete line without its newline, nil at a
// clean end of file, and nil with Truncated set when the file ends inside
// a line that does not parse or inside a compressed block. The returned
// slice is valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	r.buf = r.buf[:0]
	start := r.off
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.buf = append(r.buf, chunk...)
		r.off += int64(len(chunk))
		if len(r.buf) > MaxLineBytes {
			r.line++
			r.lineOff = start
			return nil, r.errf("line longer than %d bytes: not a sendtrace recording", MaxLineBytes)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		streamCut := errors.Is(err, io.ErrUnexpectedEOF)
		if !errors.Is(err, io.EOF) && !streamCut {
			r.line++
			r.lineOff = start
			return nil, r.errf("read %s stream: %v", r.compression, err)
		}
		if streamCut && r.compression != CompressNone && !r.StreamCut {
			// The decompressor read the file to its end and wanted
			// more.
			r.StreamCut, r.CutAt = true, r.raw.n
		}
		if len(bytes.TrimSpace(r.buf)) == 0 {
			r.Truncated = r.Truncated || streamCut
			return nil, nil
		}
		r.line++
		r.lineOff = start
		// The writer always ends records with a newline, so a last line
		// without one was cut short; it is kept only when what survived
		// is still a whole JSON value.
		if json.Valid(r.buf) {
			r.Truncated = r.Truncated || streamCut
			return r.buf, nil
		}
		r.Truncated = true
		r.partial = append(r.partial[:0], r.buf[:min(len(r.buf), 64)]...)
		return nil, nil
	}
	r.line++
	r.lineOff = start
	line := bytes.TrimRight(r.buf, "\r\n")
	if len(bytes.TrimSpace(line)) == 0 {
		return nil, r.errf("empty line: a recording has one record per line")
	}
	return line, nil
}

func looksLikeJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t")
	return len(b) > 0 && b[0] == '{'
}

// Line returns the number of the last line read, for messages.
func (r *Reader) Line() int { return r.line }
