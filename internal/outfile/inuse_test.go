package outfile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// holdOpen starts a process that has path open for reading (on its
// standard input) until the test kills it.
func holdOpen(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sleep", "600")
	cmd.Stdin = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestCheckFileInUse: a file another process has open is refused as the
// output, with force or without, through any name; once that process is
// done, force replaces it.
func TestCheckFileInUse(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "incident.jsonl.zst")
	write(t, rec, "recording")
	hard := filepath.Join(dir, "hard")
	if err := os.Link(rec, hard); err != nil {
		t.Fatal(err)
	}
	// Start returns once sleep runs, the file on its standard input.
	reader := holdOpen(t, rec)
	for _, c := range []struct {
		out   string
		force bool
	}{{rec, true}, {rec, false}, {hard, true}} {
		want := fmt.Sprintf("%s is open in process %d (sleep): wait until it is done, or give the output another file name (--force never replaces a file in use)", c.out, reader.Process.Pid)
		if err := Check(c.out, c.force); err == nil || err.Error() != want {
			t.Errorf("Check(%s, %v) with a reader: %v, want %q", c.out, c.force, err, want)
		}
	}
	// This process's own descriptors are its inputs, which Check is told.
	f, err := os.Open(hard)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reader.Process.Kill()
	reader.Wait()
	if err := Check(rec, true); err != nil {
		t.Errorf("Check(%s, true) once the reader is done: %v", rec, err)
	}
	if read(t, rec) != "recording" {
		t.Error("Check changed the file")
	}
}
