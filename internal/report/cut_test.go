package report

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCutStreamSaysWhere cuts a compressed recording inside its stream:
// the report says the footer is missing and also that the compressed
// stream itself was cut, and at which byte of the file.
func TestCutStreamSaysWhere(t *testing.T) {
	for name, stream := range map[string]string{"r.jsonl.zst": "zstd", "r.jsonl.gz": "gzip"} {
		t.Run(name, func(t *testing.T) {
			path := writeRec(t, name, recOpts{footer: true}, conns(20, 6))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cut := len(b) / 2
			cutPath := filepath.Join(t.TempDir(), "cut-"+name)
			if err := os.WriteFile(cutPath, b[:cut], 0o600); err != nil {
				t.Fatal(err)
			}
			rec, err := Load(cutPath, Options{})
			if err != nil {
				t.Fatal(err)
			}
			problems := strings.Join(Build(rec, BuildOptions{}).Problems, "\n")
			want := "the " + stream + " stream itself is cut off at byte " + strconv.Itoa(cut)
			if !strings.Contains(problems, "footer missing") || !strings.Contains(problems, want) {
				t.Errorf("problems of a recording cut at byte %d of %d:\n%s\nwant \"footer missing\" and %q", cut, len(b), problems, want)
			}
			whole, err := Load(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if p := Build(whole, BuildOptions{}).Problems; len(p) != 0 {
				t.Errorf("the whole recording has problems: %q", p)
			}
			// diff says it of either recording, too.
			notes := strings.Join(Compare(whole, rec).Notes, "\n")
			if !strings.Contains(notes, cutPath+": "+want) {
				t.Errorf("diff's notes with a recording cut at byte %d:\n%s\nwant %q", cut, notes, cutPath+": "+want)
			}
			if notes := Compare(whole, whole).Notes; len(notes) != 0 {
				t.Errorf("diff's notes of whole recordings: %q", notes)
			}
		})
	}
}
