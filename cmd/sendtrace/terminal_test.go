package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
)

// title retitles the terminal window and clears the screen when printed
// raw; shown is how sendtrace prints it.
const (
	title = "vm\x1b]0;PWNED\x07\x1b[2J"
	shown = `vm\x1b]0;PWNED\x07\x1b[2J`
)

// TestErrorLinesEscaped: an error line prints what it names escaped; the
// errors errors.Join put together get a line each, and only those.
func TestErrorLinesEscaped(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("cannot read %s: no such file", title), "sendtrace: cannot read " + shown + ": no such file\n"},
		{fmt.Errorf("bad name %s", "a\nsendtrace: forged"), `sendtrace: bad name a\x0asendtrace: forged` + "\n"},
		{&exitError{code: 1, err: errors.Join(errors.New("kernel "+title), errors.New("second"))},
			"sendtrace: kernel " + shown + "\nsendtrace: second\n"},
		{fmt.Errorf("%w; %w", errors.New("a\nb"), errors.New("c")), `sendtrace: a\x0ab; c` + "\n"},
	} {
		var b bytes.Buffer
		printError(&b, tc.err)
		if b.String() != tc.want {
			t.Errorf("printError(%q) = %q, want %q", tc.err, b.String(), tc.want)
		}
	}
}

// TestHostileRecordingCommands is the report a new user tried: a
// recording whose host, kernel and filters hold terminal escapes, under a
// file name that holds one too. No command that reads it writes an escape
// to the terminal, and each shows the host as text.
func TestHostileRecordingCommands(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	var paths [2]string
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("rec%d-\x1b[31m.jsonl", i))
		h := &record.Header{Description: session.Description{SendtraceVersion: title, Hostname: title, KernelRelease: title + "6.12",
			BootTime: start.Add(-time.Hour), StartTime: start.Add(time.Duration(i) * time.Minute), StartMonoNS: uint64(time.Hour),
			Filters: session.Filters{Comms: []string{"\x1b[8m" + title}},
			Sysctls: map[string]string{"net.ipv4.tcp_retries2\x1b[5m": title}}}
		w, err := record.Create(paths[i], h)
		if err != nil {
			t.Fatal(err)
		}
		end := &session.End{Time: h.StartTime.Add(time.Second), MonoNS: uint64(time.Hour + time.Second)}
		if err := w.Close(record.NewFooter(end, h, 0, nil, "events")); err != nil {
			t.Fatal(err)
		}
	}
	page := filepath.Join(dir, "page-\x1b]0;x\x07.html")
	for _, args := range [][]string{
		{"report", paths[0]},
		{"diff", paths[0], paths[1]},
		{"report", paths[0], paths[1]},
		{"report", "--html", page, paths[0]},
		{"report", "--conn", "5", paths[0]},
		{"report", "--nonsense\x1b[2J", paths[0]},
	} {
		root := newRootCmd()
		for _, sub := range subcommands {
			root.AddCommand(sub())
		}
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			printError(&out, err)
		}
		if i := bytes.IndexFunc(out.Bytes(), func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f }); i >= 0 {
			t.Errorf("sendtrace %q writes %q to the terminal: %q", args, out.Bytes()[i], out.Bytes())
		}
		if args[1] != "--conn" && args[1] != "--html" && !strings.Contains(args[1], "nonsense") && !strings.Contains(out.String(), shown) {
			t.Errorf("sendtrace %q does not show the host as %s: %q", args, shown, out.String())
		}
	}
	if _, err := os.Stat(page); err != nil {
		t.Errorf("report --html wrote no page: %v", err)
	}
}
