package htmlreport

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/report"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// writePage loads a recording with the page's collector among its sinks
// and writes the page next to it.
func writePage(t testing.TB, recording string, o Options) string {
	t.Helper()
	col := NewCollector(o.Conns)
	rec, err := report.Load(recording, report.Options{}, col)
	if err != nil {
		t.Fatal(err)
	}
	page := strings.TrimSuffix(recording, ".jsonl") + ".html"
	if err := WriteFile(page, false, func(w io.Writer) error { return WriteReport(w, rec, col, o) }); err != nil {
		t.Fatal(err)
	}
	return page
}

// TestHostileProcessName opens, in a real browser, the page of a
// recording whose process is named like markup. The name must show as
// text, run nothing, and the page must load nothing but itself.
func TestHostileProcessName(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	dir := t.TempDir()
	const comm = `<script>evil`
	rec := filepath.Join(dir, "hostile.jsonl")
	synthetic(t, rec, comm, 3, 4)
	page := writePage(t, rec, Options{})
	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), comm) {
		t.Fatalf("the page holds the process name unescaped")
	}
	p := testutil.OpenPage(t, ctx, page, 1200)
	p.RequireSelfContained(page)
	var got struct {
		Scripts int
		Procs   []string
		Title   []string
	}
	p.Eval(`({scripts: document.scripts.length,
		procs: [...document.querySelectorAll(".proc, summary .mono")].map(e => e.textContent),
		title: [...document.querySelectorAll("svg.timeline title")].map(e => e.textContent).slice(0, 3)})`, &got)
	if got.Scripts != 1 {
		t.Errorf("%d script elements in the page, want only its own print helper", got.Scripts)
	}
	found := 0
	for _, s := range got.Procs {
		if strings.Contains(s, comm+"/4242") {
			found++
		}
	}
	if found == 0 {
		t.Errorf("the process name does not show as text; process cells: %q", got.Procs)
	}
	t.Logf("process cells: %q; hover texts: %q", got.Procs, got.Title)
}

// TestRefusesExistingPage: a page is never written over an existing file
// without force, and the file is left as it was.
func TestRefusesExistingPage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(path, []byte("earlier"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, false, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err })
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("WriteFile over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "earlier" {
		t.Fatalf("the existing file changed: %q", b)
	}
	if err := WriteFile(path, true, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Fatalf("force did not replace the file: %q", b)
	}
}

// TestQuietRecordingPage: a recording where nothing failed still makes a
// page, which says so rather than drawing empty charts.
func TestQuietRecordingPage(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "quiet.jsonl")
	synthetic(t, rec, "idle", 0, 0)
	b, err := os.ReadFile(writePage(t, rec, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"No failure was diagnosed.", "Nothing failed.", "Failed connections (0)", "yes: the footer is present"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the page of a quiet recording lacks %q", want)
		}
	}
}
