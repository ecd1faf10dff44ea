package record

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

// TestStreamCutAt cuts compressed recordings inside their stream and
// wants the reader to say the stream itself was cut, and at which byte
// of the file; a finished stream and a plain file are not.
func TestStreamCutAt(t *testing.T) {
	for _, name := range []string{"r.jsonl", "r.jsonl.gz", "r.jsonl.zst"} {
		t.Run(name, func(t *testing.T) {
			full := writeRecording(t, filepath.Join(t.TempDir(), name), 200, true)
			rd, _, err := readAll(t, bytes.NewReader(full))
			if err != nil {
				t.Fatal(err)
			}
			if rd.StreamCut || rd.CutAt != 0 {
				t.Errorf("whole file: stream cut %v at %d, want not cut", rd.StreamCut, rd.CutAt)
			}
			for _, cut := range []int{len(full) - 7, len(full) * 2 / 3} {
				rd, _, err := readAll(t, bytes.NewReader(full[:cut]))
				if err != nil {
					t.Fatalf("cut at %d: %v", cut, err)
				}
				want := name != "r.jsonl"
				if rd.StreamCut != want || (want && rd.CutAt != int64(cut)) {
					t.Errorf("cut at %d of %d: stream cut %v at %d, want %v at %d", cut, len(full), rd.StreamCut, rd.CutAt, want, cut)
				}
				if !rd.Truncated {
					t.Errorf("cut at %d: not truncated", cut)
				}
			}
		})
	}
}

// TestForceNeverTruncates replaces a recording that a reader is reading
// (a report running while record -o --force starts) and that has a second
// link: the reader still reads the old recording whole, the other link
// keeps it, and the name holds the new one.
func TestForceNeverTruncates(t *testing.T) {
	for _, name := range []string{"r.jsonl", "r.jsonl.zst"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			old := writeRecording(t, path, 300, true)
			link := filepath.Join(dir, "link-"+name)
			if err := os.Link(path, link); err != nil {
				t.Fatal(err)
			}
			rd, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()

			h := testHeader()
			h.StartTime = h.StartTime.Add(time.Hour)
			w, err := Create(path, h)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteEvent(testEvent(0)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(nil); err != nil {
				t.Fatal(err)
			}

			n := 0
			var e events.Event
			for {
				ok, err := rd.Next(&e)
				if err != nil {
					t.Fatalf("the reader of the old recording, after it was replaced: %v", err)
				}
				if !ok {
					break
				}
				n++
			}
			if n != 300 || rd.Footer == nil {
				t.Errorf("the reader of the old recording read %d events, footer %v; want 300 and the footer", n, rd.Footer != nil)
			}
			if b, _ := os.ReadFile(link); !bytes.Equal(b, old) {
				t.Errorf("the old recording's other link holds %d bytes, want the old %d", len(b), len(old))
			}
			nrd, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer nrd.Close()
			if !nrd.Header.StartTime.Equal(h.StartTime) {
				t.Errorf("%s holds the recording started %v, want the new one (%v)", name, nrd.Header.StartTime, h.StartTime)
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", st.Mode().Perm())
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
				t.Errorf("files left beside it: %v", left)
			}
		})
	}
}

// TestCreateFileRefusesExisting: without force an existing file is an
// earlier incident's recording, and stays as it was.
func TestCreateFileRefusesExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	old := writeRecording(t, path, 3, true)
	if _, err := CreateFile(path, false, testHeader()); err == nil || !bytes.Contains([]byte(err.Error()), []byte("exists: give a new file name, or --force")) {
		t.Errorf("CreateFile over an existing recording: %v", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, old) {
		t.Error("the existing recording changed")
	}
}

// TestFindDuplicate: the same file through any name, and a copy of a
// recording, are one recording; two sessions are not.
func TestFindDuplicate(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.jsonl")
	writeRecording(t, a, 3, true)
	copyA := filepath.Join(dir, "copy.jsonl.zst")
	writeRecording(t, copyA, 5, false) // the same header, compressed, cut short
	sym := filepath.Join(dir, "sym.jsonl")
	if err := os.Symlink(a, sym); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.jsonl")
	h := testHeader()
	h.StartTime = h.StartTime.Add(time.Minute)
	h.StartMonoNS += uint64(time.Minute)
	w, err := Create(other, h)
	if err != nil {
		t.Fatal(err)
	}
	w.Close(nil)

	for _, c := range []struct {
		paths    []string
		sameFile bool
		want     string
	}{
		{[]string{a, a}, true, a + " is given twice"},
		{[]string{a, sym}, true, a + " and " + sym + " are the same file"},
		{[]string{other, a, copyA}, false, a + " and " + copyA + " hold the same recording (host host, started 2026-01-02 03:04:05.000 UTC)"},
		{[]string{a, other}, false, ""},
	} {
		err := FindDuplicate(c.paths)
		var d *DuplicateError
		if c.want == "" {
			if err != nil {
				t.Errorf("%v: %v, want none", c.paths, err)
			}
			continue
		}
		if !errors.As(err, &d) || d.SameFile != c.sameFile || err.Error() != c.want {
			t.Errorf("%v: %v, want %q", c.paths, err, c.want)
		}
	}
}

// TestStreamCutInHeader cuts compressed recordings inside their first
// record, the header: the error says the stream was cut, and at which
// byte, rather than that the file is not a recording.
func TestStreamCutInHeader(t *testing.T) {
	for name, stream := range map[string]string{"r.jsonl.gz": "gzip", "r.jsonl.zst": "zstd"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			w, err := Create(path, testHeader())
			if err != nil {
				t.Fatal(err)
			}
			// The header is flushed on its own when the file is made.
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			w.Close(nil)
			full, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, cut := range []int{12, int(st.Size()) / 2, int(st.Size()) - 1} {
				rd, err := NewReader(bytes.NewReader(full[:cut]))
				if err == nil {
					// The header's last bytes were the flush's marker:
					// the header is whole, and the read after it finds
					// the cut.
					var e events.Event
					ok, nerr := rd.Next(&e)
					if ok || nerr != nil || !rd.StreamCut || rd.CutAt != int64(cut) {
						t.Errorf("cut at byte %d of the %d-byte header: header read, then %v %v, stream cut %v at %d; want the cut at %d", cut, st.Size(), ok, nerr, rd.StreamCut, rd.CutAt, cut)
					}
					continue
				}
				want := fmt.Sprintf("the %s stream itself is cut off at byte %d, where the file ends", stream, cut)
				if err == nil || (!strings.Contains(err.Error(), want) && !strings.Contains(err.Error(), fmt.Sprintf("the %s stream is cut off at byte %d, where the file ends, before its first line is whole", stream, cut))) {
					t.Errorf("cut at byte %d of the %d-byte header: %v, want it to say the %s stream is cut off at byte %d", cut, st.Size(), err, stream, cut)
				}
			}
		})
	}
}
