package outfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCheck: the output is never one of the inputs (through its own
// name, a symlink or a hard link), with or without force; an existing
// output needs force.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl.zst")
	write(t, in, "recording")
	sym := filepath.Join(dir, "sym")
	if err := os.Symlink(in, sym); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard")
	if err := os.Link(in, hard); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "old.html")
	write(t, old, "page")
	dotted := filepath.Join(dir, ".", "in.jsonl.zst")
	for _, c := range []struct {
		out    string
		force  bool
		inputs []string
		want   string // "" for no error
	}{
		{in, true, []string{in}, in + " is also an input of this command: give the output another file name (--force never overwrites an input)"},
		{in, false, []string{in}, in + " is also an input"},
		{dotted, true, []string{in}, dotted + " is also an input"},
		{sym, true, []string{in}, sym + " is the same file as " + in + ", an input of this command"},
		{hard, true, []string{"other", in}, hard + " is the same file as " + in + ", an input"},
		{in, true, []string{hard}, in + " is the same file as " + hard},
		{old, false, []string{in}, old + " exists: give a new file name, or --force to overwrite it"},
		{dir, true, []string{in}, dir + " is a directory"},
		{old, true, []string{in, sym}, ""},
		{filepath.Join(dir, "new.html"), false, []string{in}, ""},
	} {
		err := Check(c.out, c.force, c.inputs...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Check(%s, %v, %v): %v, want nil", c.out, c.force, c.inputs, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("Check(%s, %v, %v): %v, want %q", c.out, c.force, c.inputs, err, c.want)
		}
	}
	if read(t, in) != "recording" {
		t.Error("Check changed the input")
	}
}

// TestWriteReplacesWhole: with force, a new page replaces the old one
// only once whole; a reader of the old file and its other link keep it;
// a symlink keeps pointing where it did and its target gets the page.
func TestWriteReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "page.html")
	write(t, page, "old page")
	link := filepath.Join(dir, "link.html")
	if err := os.Link(page, link); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(page)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(page, false, "page", func(w io.Writer) error { return nil }); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("Write without force over an existing page: %v", err)
	}
	if err := Write(page, true, "page", func(w io.Writer) error { _, err := io.WriteString(w, "new page"); return err }); err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(f); string(got) != "old page" {
		t.Errorf("a reader of the old page read %q", got)
	}
	if read(t, link) != "old page" || read(t, page) != "new page" {
		t.Errorf("link %q, page %q; want the old page and the new one", read(t, link), read(t, page))
	}
	if st, _ := os.Stat(page); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}

	target := filepath.Join(dir, "target.html")
	write(t, target, "old")
	sym := filepath.Join(dir, "latest.html")
	if err := os.Symlink("target.html", sym); err != nil {
		t.Fatal(err)
	}
	if err := Write(sym, true, "page", func(w io.Writer) error { _, err := io.WriteString(w, "newest"); return err }); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(sym); err != nil || l != "target.html" || read(t, target) != "newest" {
		t.Errorf("symlink now %q (%v), target %q; want the link kept and its target replaced", l, err, read(t, target))
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestWriteFails: a failed write leaves no file, or the old one as it
// was, and no temporary file.
func TestWriteFails(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.html")
	write(t, old, "old")
	bad := func(w io.Writer) error {
		if _, err := w.Write(bytes.Repeat([]byte("x"), 1<<20)); err != nil {
			return err
		}
		return io.ErrShortWrite
	}
	if err := Write(old, true, "page", bad); err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), old+" keeps its old contents") {
		t.Errorf("failed write over %s: %v", old, err)
	}
	if read(t, old) != "old" {
		t.Error("the old page changed")
	}
	nw := filepath.Join(dir, "new.html")
	if err := Write(nw, false, "page", bad); err == nil || !strings.Contains(err.Error(), "no file was written") {
		t.Errorf("failed write of %s: %v", nw, err)
	}
	if _, err := os.Stat(nw); !os.IsNotExist(err) {
		t.Errorf("%s after a failed write: %v", nw, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestWriteDevFull writes a page to /dev/full with force, as to a device
// given for the output: it is written in place, the error is one line
// that says the disk is full, and the device is never removed or replaced.
func TestWriteDevFull(t *testing.T) {
	before, err := os.Stat("/dev/full")
	if err != nil || before.Mode()&os.ModeCharDevice == 0 {
		// Every Linux kernel has it (drivers/char/mem.c): a /dev without
		// it is an incomplete one, to be fixed there, not a reason to skip.
		t.Fatalf("no /dev/full character device (mknod /dev/full c 1 7): %v", err)
	}
	err = Write("/dev/full", true, "page", func(w io.Writer) error {
		_, err := w.Write(bytes.Repeat([]byte("<p>page</p>\n"), 100000))
		return err
	})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "no space left on device: free space there") {
		t.Errorf("page to /dev/full: %v, want one line saying the disk is full", err)
	}
	after, serr := os.Stat("/dev/full")
	if serr != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
		t.Fatalf("/dev/full after the failed page: %v %v, want it as it was (%v)", after, serr, before.Mode())
	}
}

// TestCommitRace: without force, a name taken between Create and Commit
// is not replaced.
func TestCommitRace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.jsonl")
	f, err := Create(path, false)
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, "another recorder's")
	if _, err := f.WriteString("mine"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("Commit over a name taken meanwhile: %v", err)
	}
	f.Abort()
	if read(t, path) != "another recorder's" {
		t.Error("the file that took the name was replaced")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
