package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
)

// writeRecording writes a small recording started at start.
func writeRecording(t *testing.T, path string, start time.Time) []byte {
	t.Helper()
	h := &record.Header{Description: session.Description{SendtraceVersion: "test", Hostname: "host",
		BootTime: start.Add(-time.Hour), StartTime: start, StartMonoNS: uint64(time.Hour)}}
	w, err := record.Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	end := &session.End{Time: start.Add(time.Second), MonoNS: uint64(time.Hour + time.Second)}
	if err := w.Close(record.NewFooter(end, h, 0, nil, "events")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendtrace runs the command line args as main does and returns its
// error (nil when it succeeded).
func sendtrace(t *testing.T, args ...string) error {
	t.Helper()
	var out bytes.Buffer
	err := sendtraceOut(t, &out, args...)
	if err != nil {
		t.Logf("sendtrace %s: %v", strings.Join(args, " "), err)
	}
	return err
}

// sendtraceOut runs the command line as main does, its output to out.
func sendtraceOut(t *testing.T, out *bytes.Buffer, args ...string) error {
	t.Helper()
	out.Reset()
	root := newRootCmd()
	for _, sub := range subcommands {
		root.AddCommand(sub())
	}
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs(args)
	return root.Execute()
}

// TestOutputIsNeverAnInput: report --html and diff --html refuse to write
// their page over a recording they read, under its own name or through a
// symlink or a hard link, with --force or without; record -o refuses the
// file it reads (--btf) and its --ready-file. Each is one line that says
// what to do, and the recordings are left as they were.
func TestOutputIsNeverAnInput(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.jsonl.zst")
	b := filepath.Join(dir, "b.jsonl")
	aBytes := writeRecording(t, a, time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	bBytes := writeRecording(t, b, time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC))
	sym := filepath.Join(dir, "sym.html")
	if err := os.Symlink(a, sym); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.html")
	if err := os.Link(b, hard); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "new.jsonl")
	const input = "an input of this command: give the output another file name (--force never overwrites an input)"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "--html", a, "--force", a}, a + " is also " + input},
		{[]string{"report", "--html", a, a}, a + " is also " + input},
		{[]string{"report", "--html", sym, "--force", a}, sym + " is the same file as " + a + ", " + input},
		{[]string{"report", "--html", hard, "--force", a, b}, hard + " is the same file as " + b + ", " + input},
		{[]string{"diff", "--html", b, "--force", a, b}, b + " is also " + input},
		{[]string{"diff", "--html", sym, "--force", a, b}, sym + " is the same file as " + a + ", " + input},
		{[]string{"diff", "--html", hard, "--force", a, b}, hard + " is the same file as " + b + ", " + input},
		{[]string{"record", "-o", a, "--force", "--btf", a}, a + " is also " + input},
		{[]string{"record", "-o", hard, "--force", "--btf", b}, hard + " is the same file as " + b + ", " + input},
		{[]string{"record", "-o", rec, "--ready-file", rec}, "--ready-file " + rec + " is the recording -o " + rec + ": give the ready file another name"},
	} {
		err := sendtrace(t, c.args...)
		if err == nil || err.Error() != c.want {
			t.Errorf("sendtrace %s: %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	if got, _ := os.ReadFile(a); !bytes.Equal(got, aBytes) {
		t.Errorf("%s changed", a)
	}
	if got, _ := os.ReadFile(b); !bytes.Equal(got, bBytes) {
		t.Errorf("%s changed", b)
	}
	// A page beside them is written, and replaced only with --force.
	page := filepath.Join(dir, "diff.html")
	if err := sendtrace(t, "diff", "--html", page, a, b); err != nil {
		t.Fatal(err)
	}
	if err := sendtrace(t, "diff", "--html", page, a, b); err == nil || !strings.Contains(err.Error(), "exists: give a new file name, or --force") {
		t.Errorf("diff --html over an existing page: %v", err)
	}
	if err := sendtrace(t, "diff", "--html", page, "--force", a, b); err != nil {
		t.Error(err)
	}
}

// TestOneRecordingTwice: diff refuses one recording given twice, as
// report does, whether the same file (through any name) or two files
// that hold the same recording; two recordings are compared.
func TestOneRecordingTwice(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.jsonl")
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	aBytes := writeRecording(t, a, start)
	cp := filepath.Join(dir, "copy.jsonl")
	if err := os.WriteFile(cp, aBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	sym := filepath.Join(dir, "sym.jsonl")
	if err := os.Symlink(a, sym); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "b.jsonl")
	writeRecording(t, b, start.Add(time.Hour))
	const diffAdvice = ": give two different recordings, one made before the change and one after"
	const reportAdvice = ": give one recording per end, made at the same time"
	same := a + " and " + cp + " hold the same recording (host host, started 2026-01-02 03:00:00.000 UTC)"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"diff", a, a}, a + " is given twice" + diffAdvice},
		{[]string{"diff", a, sym}, a + " and " + sym + " are the same file" + diffAdvice},
		{[]string{"diff", a, cp}, same + diffAdvice},
		{[]string{"diff", "--html", filepath.Join(dir, "d.html"), a, cp}, same + diffAdvice},
		{[]string{"report", a, a}, a + " is given twice" + reportAdvice},
		{[]string{"report", a, cp}, same + reportAdvice},
		{[]string{"diff", a, b}, ""},
	} {
		err := sendtrace(t, c.args...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("sendtrace %s: %v", strings.Join(c.args, " "), err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("sendtrace %s: %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestReadyFileIsNeverARecording: --ready-file naming a recording (or
// any file that is not an old ready file) is refused in one line before
// tracing starts, and the recording stays as it was; an old ready file
// is replaced.
func TestReadyFileIsNeverARecording(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.jsonl.zst")
	aBytes := writeRecording(t, a, time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	const want = " exists and is not a ready file: give a new file name (a ready file replaces only an old ready file)"
	for _, args := range [][]string{
		{"record", "-o", filepath.Join(dir, "new.jsonl"), "--ready-file", a, "--duration", "1s", "--status-interval", "0"},
		{"--ready-file", a, "--duration", "1s"},
	} {
		err := sendtrace(t, args...)
		if err == nil || err.Error() != "--ready-file "+a+want {
			t.Errorf("sendtrace %s: %v, want %q", strings.Join(args, " "), err, "--ready-file "+a+want)
		}
		if got, _ := os.ReadFile(a); !bytes.Equal(got, aBytes) {
			t.Fatalf("sendtrace %s changed the recording %s", strings.Join(args, " "), a)
		}
	}
}

// TestOutputInUse: record -o and report --html refuse, with --force, a
// file another command has open (here a reader of the recording), in
// one line, and leave it as it was.
func TestOutputInUse(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.jsonl.zst")
	aBytes := writeRecording(t, a, time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	b := filepath.Join(dir, "b.jsonl")
	writeRecording(t, b, time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC))
	c := filepath.Join(dir, "c.jsonl")
	writeRecording(t, c, time.Date(2026, 1, 2, 5, 0, 0, 0, time.UTC))
	f, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	reader := exec.Command("sleep", "600")
	reader.Stdin = f
	err = reader.Start()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { reader.Process.Kill(); reader.Wait() }()
	want := fmt.Sprintf("%s is open in process %d (sleep): wait until it is done, or give the output another file name (--force never replaces a file in use)", a, reader.Process.Pid)
	for _, args := range [][]string{
		{"record", "-o", a, "--force", "--duration", "1s", "--status-interval", "0"},
		{"report", "--html", a, "--force", b},
		{"diff", "--html", a, "--force", b, c},
	} {
		if err := sendtrace(t, args...); err == nil || err.Error() != want {
			t.Errorf("sendtrace %s: %v, want %q", strings.Join(args, " "), err, want)
		}
	}
	if got, _ := os.ReadFile(a); !bytes.Equal(got, aBytes) {
		t.Errorf("%s changed", a)
	}
}
