package htmlreport

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestWriteFileDiskFull writes a page larger than a 64 KiB tmpfs, as a
// page on a full disk: one error line that says what to do, no partial
// page left, and with --force the old page kept as it was.
func TestWriteFileDiskFull(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.SmallDisk(t, 64<<10)
	page := bytes.Repeat([]byte("<p>a failed send</p>\n"), 1<<20/21)
	write := func(w io.Writer) error {
		_, err := w.Write(page)
		return err
	}
	old := []byte("<html>the page of last week's incident</html>\n")
	for _, c := range []struct {
		name  string
		force bool
		left  string
	}{
		{"new.html", false, "no file was written"},
		{"old.html", true, "keeps its old contents"},
	} {
		path := filepath.Join(dir, c.name)
		if c.force {
			if err := os.WriteFile(path, old, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		err := WriteFile(path, c.force, write)
		if err == nil {
			t.Fatalf("%s: a %d-byte page fit in a 64 KiB file system", c.name, len(page))
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "no space left on device") ||
			!strings.Contains(msg, "free space there, or give a file on another file system") || !strings.Contains(msg, c.left) {
			t.Errorf("%s: error %q, want one line that says the disk is full, what to do, and %q", c.name, msg, c.left)
		} else {
			t.Logf("%s: %s", c.name, msg)
		}
		b, rerr := os.ReadFile(path)
		if c.force && !bytes.Equal(b, old) {
			t.Errorf("%s: the old page holds %d bytes (%v), want it as it was", c.name, len(b), rerr)
		}
		if !c.force && !os.IsNotExist(rerr) {
			t.Errorf("%s: a partial page was left (%d bytes, %v)", c.name, len(b), rerr)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
