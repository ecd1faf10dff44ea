package record

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
)

func testHeader() *Header {
	return &Header{Description: session.Description{
		SendtraceVersion: "test",
		Hostname:         "host",
		KernelRelease:    "6.18.0",
		BootTime:         time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		StartTime:        time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		StartMonoNS:      1_000_000_000,
		Filters:          session.Filters{Dsts: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}, Errnos: []int32{110}},
		Hooks:            session.Plan{{Layer: "send-return", Hook: "tp_btf/sock_send_length", Active: true}},
		Sysctls:          map[string]string{"net.ipv4.tcp_retries2": "4"},
	}}
}

func testEnd(t *events.Totals) *session.End {
	return &session.End{Time: time.Date(2026, 1, 2, 3, 5, 5, 0, time.UTC), MonoNS: 61_000_000_000, Totals: t}
}

func testEvent(i int) *events.Event {
	kinds := []events.Kind{events.KindRetransmit, events.KindErrorReport, events.KindSendError}
	e := &events.Event{
		Time:       time.Date(2026, 1, 2, 3, 4, 5, i*1000, time.UTC),
		Mono:       uint64(1_000_000_000 + i*1000),
		Kind:       kinds[i%len(kinds)],
		PID:        42,
		TID:        42,
		Comm:       "actor",
		OwnerKnown: true,
		Cookie:     uint64(100 + i%3),
		Family:     2,
		Protocol:   6,
		Src:        netip.MustParseAddrPort("198.18.0.1:40000"),
		Dst:        netip.MustParseAddrPort("198.18.0.2:9000"),
		State:      1,
		Bytes:      1448,
		SinceSend:  -1,
		SinceRecv:  -1,
	}
	if e.Kind != events.KindRetransmit {
		e.Errno = 110
	}
	if e.Kind == events.KindSendError {
		e.Layer = events.LayerBoth
		e.Syscall = "write"
	}
	return e
}

func testTotals() *events.Totals {
	return &events.Totals{
		ByKey: map[events.TotalsKey]events.TotalsValue{
			{PID: 42, Kind: events.KindSendError, Errno: 110}:   {Count: 3, Bytes: 4344},
			{PID: 42, Kind: events.KindRetransmit}:              {Count: 4, Bytes: 5792},
			{PID: 42, Kind: events.KindErrorReport, Errno: 110}: {Count: 3},
		},
		LostKernel: 1,
	}
}

// writeRecording writes n events to a recording at path and returns the
// bytes of the file.
func writeRecording(t *testing.T, path string, n int, footer bool) []byte {
	t.Helper()
	h := testHeader()
	w, err := Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := w.WriteEvent(testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	var f *Footer
	if footer {
		f = NewFooter(testEnd(testTotals()), h, w.Events(), nil, "events")
	}
	if err := w.Close(f); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, r io.Reader) (*Reader, []events.Event, error) {
	t.Helper()
	rd, err := NewReader(r)
	if err != nil {
		return nil, nil, err
	}
	var evs []events.Event
	for {
		var e events.Event
		ok, err := rd.Next(&e)
		if err != nil {
			return rd, evs, err
		}
		if !ok {
			return rd, evs, nil
		}
		evs = append(evs, e)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"r.jsonl", "r.jsonl.gz", "r.jsonl.zst"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			b := writeRecording(t, path, 50, true)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", st.Mode().Perm())
			}
			rd, evs, err := readAll(t, bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if rd.Compression() != CompressionFor(name) {
				t.Errorf("compression %v, want %v", rd.Compression(), CompressionFor(name))
			}
			if len(evs) != 50 {
				t.Fatalf("read %d events, want 50", len(evs))
			}
			if rd.Footer == nil || rd.Truncated {
				t.Fatalf("footer %v truncated %v", rd.Footer, rd.Truncated)
			}
			if got := rd.Footer.ByErrno["send_error"]["ETIMEDOUT"]; got != 3 {
				t.Errorf("footer send_error ETIMEDOUT = %d, want 3", got)
			}
			if got := rd.Footer.EventsTotals(); got.Sum(events.KindRetransmit) != 4 || got.LostKernel != 1 {
				t.Errorf("footer totals round trip: %+v", got)
			}
			if rd.Header.Sysctls["net.ipv4.tcp_retries2"] != "4" || rd.Header.Filters.Errnos[0] != events.ETIMEDOUT || rd.Header.Filters.Dsts[0].String() != "198.18.0.0/15" {
				t.Errorf("header round trip: %+v", rd.Header)
			}
			want := testEvent(7)
			if got := evs[7]; got.Cookie != want.Cookie || got.Kind != want.Kind || got.Dst != want.Dst || got.Mono != want.Mono {
				t.Errorf("event 7 = %+v, want %+v", got, want)
			}
		})
	}
}

func TestExistingFileBecomes0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeRecording(t, path, 1, true)
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

// TestEveryTruncation cuts a recording at every byte, as kill -9 or a full
// disk may, and checks that the reader returns a prefix of the events and
// says the footer is missing, without ever failing.
func TestEveryTruncation(t *testing.T) {
	for _, name := range []string{"r.jsonl", "r.jsonl.gz", "r.jsonl.zst"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			full := writeRecording(t, path, 20, true)
			_, all, err := readAll(t, bytes.NewReader(full))
			if err != nil {
				t.Fatal(err)
			}
			// The header line is needed to call a file a recording at all.
			headerEnd := 0
			if name == "r.jsonl" {
				headerEnd = bytes.IndexByte(full, '\n') + 1
			}
			step := 1
			if testing.Short() {
				step = 17
			}
			for cut := headerEnd; cut < len(full); cut += step {
				rd, evs, err := readAll(t, bytes.NewReader(full[:cut]))
				if err != nil {
					if name != "r.jsonl" && rd == nil {
						// A compressed file cut before its header
						// decompresses has no header; that is an error,
						// not a panic.
						continue
					}
					t.Fatalf("cut at %d: %v", cut, err)
				}
				if len(evs) > len(all) {
					t.Fatalf("cut at %d: %d events, more than %d", cut, len(evs), len(all))
				}
				for i := range evs {
					if evs[i].Mono != all[i].Mono {
						t.Fatalf("cut at %d: event %d differs", cut, i)
					}
				}
				if rd.Footer != nil && len(evs) != len(all) {
					t.Fatalf("cut at %d: footer present with %d of %d events", cut, len(evs), len(all))
				}
			}
		})
	}
}

// TestFlushedWithoutClose is a recorder killed without Close: everything
// flushed is readable, and the footer is missing.
func TestFlushedWithoutClose(t *testing.T) {
	for _, name := range []string{"r.jsonl", "r.jsonl.gz", "r.jsonl.zst"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			w, err := Create(path, testHeader())
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 10; i++ {
				if err := w.WriteEvent(testEvent(i)); err != nil {
					t.Fatal(err)
				}
			}
			// Wait for the timer, not an explicit Flush: that is what a
			// killed recorder relies on.
			time.Sleep(2 * FlushInterval)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rd, evs, err := readAll(t, bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 10 || rd.Footer != nil {
				t.Fatalf("read %d events, footer %v; want 10 and no footer", len(evs), rd.Footer)
			}
			if name != "r.jsonl" && !rd.Truncated {
				t.Errorf("an unfinished compressed stream should read as truncated")
			}
			w.Close(nil)
		})
	}
}

// fullFile accepts limit bytes and then fails as a full disk does.
type fullFile struct {
	buf   bytes.Buffer
	limit int
}

func (f *fullFile) Write(p []byte) (int, error) {
	room := f.limit - f.buf.Len()
	if room <= 0 {
		return 0, &os.PathError{Op: "write", Path: "rec", Err: syscall.ENOSPC}
	}
	if len(p) > room {
		f.buf.Write(p[:room])
		return room, &os.PathError{Op: "write", Path: "rec", Err: syscall.ENOSPC}
	}
	return f.buf.Write(p)
}
func (f *fullFile) Sync() error  { return nil }
func (f *fullFile) Close() error { return nil }
func (f *fullFile) Truncate(n int64) error {
	f.buf.Truncate(int(n))
	return nil
}

func TestDiskFull(t *testing.T) {
	for _, c := range []Compression{CompressNone, CompressGzip, CompressZstd} {
		t.Run(c.String(), func(t *testing.T) {
			ff := &fullFile{limit: 6000}
			w, err := newWriter("rec", ff, c, testHeader())
			if err != nil {
				t.Fatal(err)
			}
			var werr error
			for i := 0; i < 100000 && werr == nil; i++ {
				werr = w.WriteEvent(testEvent(i))
				if i%7 == 0 && werr == nil {
					werr = w.Flush()
				}
			}
			if werr == nil {
				t.Fatal("no error from a full disk")
			}
			if !errors.Is(werr, syscall.ENOSPC) || !strings.Contains(werr.Error(), "disk is full") {
				t.Errorf("error %q does not say the disk is full", werr)
			}
			if err := w.Close(NewFooter(testEnd(nil), nil, 0, nil, "events")); err == nil {
				t.Error("Close after a full disk returned no error")
			}
			rd, evs, err := readAll(t, bytes.NewReader(ff.buf.Bytes()))
			if err != nil {
				t.Fatalf("file after a full disk: %v", err)
			}
			if len(evs) == 0 || rd.Footer != nil {
				t.Fatalf("read %d events, footer %v", len(evs), rd.Footer)
			}
		})
	}
}

func TestZcatReadsGzip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl.gz")
	b := writeRecording(t, path, 3, true)
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(plain, []byte("\n")); n != 5 {
		t.Errorf("%d lines, want header + 3 events + footer", n)
	}
}

func TestBadInput(t *testing.T) {
	good := writeRecording(t, filepath.Join(t.TempDir(), "g.jsonl"), 3, true)
	lines := bytes.SplitAfter(good, []byte("\n"))
	header := lines[0]
	event := lines[1]
	footer := lines[4]
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	cases := []struct {
		name string
		in   []byte
		want string // substring of the error; "" means no error
	}{
		{"empty", nil, "empty file"},
		{"empty gzip", gz(nil), "empty file"},
		{"only newline", []byte("\n"), "line 1"},
		{"foreign text", []byte("hello world\n"), "line 1 (byte offset 0): not a sendtrace recording"},
		{"foreign json", []byte(`{"kind":"header","format":"other"}` + "\n"), "header format is \"other\""},
		{"foreign binary", []byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0}, "not a sendtrace recording"},
		{"event stream", event, "event stream (-o json)"},
		{"newer version", []byte(`{"kind":"header","format":"sendtrace-recording","format_version":99}` + "\n"), "newer than this sendtrace"},
		{"header only", header, ""},
		{"header only gzip", gz(header), ""},
		{"corrupt middle", cat(header, event, []byte("{not json\n"), event, footer), "line 3 (byte offset " + strconv.Itoa(len(header)+len(event)) + ")"},
		{"garbage middle", cat(header, event, []byte("\x00\x01\x02\n"), footer), "line 3"},
		{"bad event field", cat(header, []byte(`{"kind":"send_error","time":"yesterday"}`+"\n")), "line 2"},
		{"second header", cat(header, event, header), "second header"},
		{"after footer", cat(header, footer, event), "follows the footer"},
		{"empty line", cat(header, []byte("\n"), event), "line 2"},
		{"unknown kind skipped", cat(header, []byte(`{"kind":"diagnosis","x":1}`+"\n"), event, footer), ""},
		// A fixed gzip header, then a deflate block of the reserved type
		// (BFINAL=1, BTYPE=11): corrupt at its first bit, whatever the
		// recording's header holds. Cutting a real stream and appending
		// junk decoded differently with each header's start time.
		{"corrupt gzip", cat(gz(nil)[:10], []byte{0x07}, bytes.Repeat([]byte{0xff}, 40)), "read gzip stream: flate: corrupt input"},
		{"long line", cat(header, bytes.Repeat([]byte("x"), MaxLineBytes+10)), "longer than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readAll(t, bytes.NewReader(c.in))
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
