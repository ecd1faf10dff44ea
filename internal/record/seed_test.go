package record

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzSeeds regenerates the committed seed corpus when
// SENDTRACE_WRITE_SEEDS=1, so seeds follow format changes.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("SENDTRACE_WRITE_SEEDS") != "1" {
		t.Skip("set SENDTRACE_WRITE_SEEDS=1 to rewrite testdata/fuzz/FuzzReader")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{}
	for _, name := range []string{"plain.jsonl", "gzip.jsonl.gz", "zstd.jsonl.zst"} {
		b := writeRecording(t, filepath.Join(t.TempDir(), name), 6, true)
		seeds[name] = b
		seeds["cut-"+name] = b[:len(b)*2/3]
	}
	plain := seeds["plain.jsonl"]
	lines := bytes.SplitAfter(plain, []byte("\n"))
	seeds["header-only"] = lines[0]
	seeds["no-footer"] = bytes.Join(lines[:len(lines)-2], nil)
	seeds["corrupt-middle"] = bytes.Join([][]byte{lines[0], lines[1], []byte("{\"kind\":\"retransmit\",\"time\":1}\n"), lines[2]}, nil)
	for name, b := range seeds {
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
