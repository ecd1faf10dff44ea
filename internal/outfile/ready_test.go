package outfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadyFile: a ready file is written where there is none or over an
// old ready file, whole; never over anything else, which stays as it
// was, and only a ready file is removed.
func TestReadyFile(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "incident.jsonl.zst")
	const recording = "(\xb5/\xfd\x00X\x8d\x05\x00\x02\x8f\x1e\x18"
	write(t, rec, recording)
	notes := filepath.Join(dir, "notes.txt")
	write(t, notes, "what broke at 03:00\n")
	old := filepath.Join(dir, "old-ready")
	write(t, old, "send-return\ttp_btf/sock_send_length\nlisten\t[::1]:9464\n")
	empty := filepath.Join(dir, "empty")
	write(t, empty, "")
	text := "send-return\tfexit/sock_sendmsg\n"

	for _, c := range []struct {
		path, want string
	}{
		{rec, "--ready-file " + rec + " exists and is not a ready file: give a new file name (a ready file replaces only an old ready file)"},
		{notes, "--ready-file " + notes + " exists and is not a ready file"},
		{dir, "--ready-file " + dir + " is a directory: give a file name"},
		{"/dev/null", "--ready-file /dev/null exists and is not a ready file"},
		{old, ""},
		{empty, ""},
		{filepath.Join(dir, "new"), ""},
	} {
		err := CheckReady(c.path)
		werr := WriteReady(c.path, text)
		switch {
		case c.want == "" && (err != nil || werr != nil):
			t.Errorf("%s: CheckReady %v, WriteReady %v; want both nil", c.path, err, werr)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want) || werr == nil || werr.Error() != err.Error()):
			t.Errorf("%s: CheckReady %v, WriteReady %v; want %q", c.path, err, werr, c.want)
		case c.want == "" && read(t, c.path) != text:
			t.Errorf("%s holds %q after WriteReady, want %q", c.path, read(t, c.path), text)
		}
	}
	if read(t, rec) != recording || read(t, notes) != "what broke at 03:00\n" {
		t.Error("a file that is not a ready file changed")
	}
	if st, err := os.Stat(old); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("the ready file: %v, mode %v, want 0644", err, st.Mode().Perm())
	}
	for _, p := range []string{rec, notes, old} {
		if err := RemoveReady(p); err != nil {
			t.Errorf("RemoveReady(%s): %v", p, err)
		}
	}
	if read(t, rec) != recording || read(t, notes) != "what broke at 03:00\n" {
		t.Error("RemoveReady removed or changed a file that is not a ready file")
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the ready file after RemoveReady: %v, want it gone", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("files left beside them: %v", left)
	}
}
