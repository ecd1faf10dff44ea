package join

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
)

func writeEmpty(t *testing.T, path string, startMono uint64) {
	t.Helper()
	w, err := record.Create(path, &record.Header{Description: session.Description{
		Hostname: "host", BootTime: t0, StartTime: t0.Add(time.Duration(startMono)), StartMonoNS: startMono}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
}

// One recording given twice (or a copy of it) is bad input, not two
// ends that each saw everything at one end only.
func TestLoadRefusesTheSameRecordingTwice(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl"), filepath.Join(dir, "c.jsonl")
	writeEmpty(t, a, 1e9)
	raw, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	writeEmpty(t, c, 2e9)
	for _, paths := range [][]string{{a, a}, {a, b}} {
		if _, err := Load(paths, Replay(diagnose.Config{})); err == nil || !strings.Contains(err.Error(), "are the same recording") {
			t.Errorf("Load(%v): %v, want the same recording refused", paths, err)
		}
	}
	if _, err := Load([]string{a, c}, Replay(diagnose.Config{})); err != nil {
		t.Errorf("two recordings: %v", err)
	}
}
