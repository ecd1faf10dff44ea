package htmlreport

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/report"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestLargeRecordingPage makes a recording of many black-holed sockets
// with the recording writer, writes its page and opens it in Chromium:
// the page must stay small and open quickly however many events there
// are, because only the top connections are drawn. SENDTRACE_LARGE_EVENTS
// sets the size (default 200,000 events; docs/benchmarks.md has the
// figures for 1,000,000).
func TestLargeRecordingPage(t *testing.T) {
	want := 200_000
	if s := os.Getenv("SENDTRACE_LARGE_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 20 {
			t.Fatalf("SENDTRACE_LARGE_EVENTS=%q: give a number of events, 20 or more", s)
		}
		want = n
	}
	ctx := testutil.Context(t, 5*time.Minute)
	dir := t.TempDir()
	rec := filepath.Join(dir, "large.jsonl.zst")
	const rtx = 15
	t0 := time.Now()
	n := synthetic(t, rec, "storm", want/(rtx+5), rtx)
	st, _ := os.Stat(rec)
	t.Logf("recording: %d events, %d bytes (.jsonl.zst), written in %s", n, st.Size(), time.Since(t0).Round(time.Millisecond))

	// The text report's replay alone, for comparison.
	t1 := time.Now()
	if _, err := report.Load(rec, report.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("report.Load alone (what the text report replays): %s", time.Since(t1).Round(time.Millisecond))

	t1 = time.Now()
	page := writePage(t, rec, Options{})
	gen := time.Since(t1)
	ps, _ := os.Stat(page)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("page: %d bytes, loaded and written in %s (peak heap in use by the test process %d MiB)", ps.Size(), gen.Round(time.Millisecond), ms.HeapSys>>20)
	if ps.Size() > 8<<20 {
		t.Errorf("page is %d bytes: too large to open quickly", ps.Size())
	}

	t2 := time.Now()
	p := testutil.OpenPage(t, ctx, page, 1200)
	open := time.Since(t2)
	p.RequireSelfContained(page)
	var drawn, listed int
	p.Eval(`document.querySelectorAll("svg.timeline").length`, &drawn)
	p.Eval(`document.querySelectorAll("#connections tr[id^='conn-']").length`, &listed)
	t.Logf("browser: started and loaded the page in %s, of which navigation to load event %s; %d timelines drawn, %d connections listed",
		open.Round(time.Millisecond), p.LoadTime.Round(time.Millisecond), drawn, listed)
	if drawn != DefaultConns {
		t.Errorf("%d timelines drawn, want %d", drawn, DefaultConns)
	}
	if p.LoadTime > 10*time.Second {
		t.Errorf("the browser took %s to load the page", p.LoadTime)
	}
}
