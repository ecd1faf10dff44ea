package record

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestFuzzSeeds checks that the committed seed corpus has every seed the
// current format produces, and rewrites it when SENDTRACE_WRITE_SEEDS=1,
// so seeds follow format changes.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	write := os.Getenv("SENDTRACE_WRITE_SEEDS") == "1"
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
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
		if !write {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("seed %s missing from the corpus (SENDTRACE_WRITE_SEEDS=1 go test -run TestFuzzSeeds rewrites it): %v", name, err)
			}
			continue
		}
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
