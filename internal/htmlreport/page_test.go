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

// TestLargeDiffPage: the diff of two recordings with thousands of failed
// connections draws their times to failure as histograms, not a dot
// each, and calls the change real.
func TestLargeDiffPage(t *testing.T) {
	dir := t.TempDir()
	before, after := filepath.Join(dir, "before.jsonl.zst"), filepath.Join(dir, "after.jsonl.zst")
	synthetic(t, before, "client", 2000, 8)
	synthetic(t, after, "client", 2000, 5)
	a, err := report.Load(before, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := report.Load(after, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var page strings.Builder
	if err := WriteDiff(&page, a, b); err != nil {
		t.Fatal(err)
	}
	s := page.String()
	if n := strings.Count(s, `<circle class="ttf-`); n != 0 {
		t.Errorf("%d dots for 4,000 connections", n)
	}
	if n := strings.Count(s, `<rect class="ttf-`); n == 0 || n > 2*ttfBins {
		t.Errorf("%d histogram bars, want 1 to %d", n, 2*ttfBins)
	}
	if !strings.Contains(s, `Verdict: <span class="v-changed">changed</span>`) {
		t.Error("the diff page does not call the shorter time to failure a change")
	}
	if len(s) > 200<<10 {
		t.Errorf("diff page is %d bytes", len(s))
	}
	t.Logf("diff page of 2 x 2,000 failed connections: %d bytes", len(s))
}

// TestIncompleteRecordingPage: a recording whose recorder was killed has
// no footer, and the page's header says so in words.
func TestIncompleteRecordingPage(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "killed.jsonl")
	synthetic(t, rec, "client", 2, 3)
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the footer, the last line, as kill -9 would have.
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	if err := os.WriteFile(rec, []byte(strings.Join(lines[:len(lines)-1], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(writePage(t, rec, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"no: the footer is missing", "events lost: unknown: no footer", "footer missing: the recording was not stopped cleanly"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page of a recording without footer lacks %q", want)
		}
	}
}
