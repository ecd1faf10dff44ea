package diagnose_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestIdleResetPage records a pooled connection that idles past a
// middlebox's timeout and is reset on its next request, and opens its
// report page in headless Chromium: the connection's drawing must shade
// the peer's silence before the reset, as long as the client was idle,
// and the idle-reset diagnosis must link to it.
//
// SENDTRACE_SCREENSHOTS=DIR keeps the page's screenshot there.
func TestIdleResetPage(t *testing.T) {
	testutil.Chromium(t)
	ctx := scenario(t)
	lab, dst := idleLab(t, true)
	startPeerServer(t, ctx, lab.Server, "-listen", dst)
	cl := startPeerClient(t, lab.Client, "-to", dst, "-mode", "idle", "-idle", "3500ms", "-count", "10")
	dir := t.TempDir()
	recording := filepath.Join(dir, "idle.jsonl")
	tr := testutil.StartSendtrace(t, ctx, sendtraceBin, 60*time.Second, "record", "-o", recording, "--status-interval", "0", cl.pidArg())
	r := cl.run(t, ctx)
	tr.Stop(t, 30*time.Second)
	if len(r.Errnos) == 0 || len(r.Cookies) == 0 {
		t.Fatalf("lab: the client saw no failure after the idle: %+v", r)
	}
	page := filepath.Join(dir, "idle.html")
	if out, err := exec.Command(sendtraceBin, "report", "--html", page, recording).CombinedOutput(); err != nil {
		t.Fatalf("report --html: %v: %s", err, out)
	}
	p := testutil.OpenPage(t, ctx, page, 1200)
	p.RequireSelfContained(page)

	var failed uint64
	var dom struct {
		Links  []string
		Shades []string
		Resets int
	}
	// The failed socket is the one the idle-reset diagnosis names.
	p.Eval(`[...document.querySelectorAll("#diagnoses .diag[data-rule='idle-reset'] a")].map(a => a.getAttribute("href"))`, &dom.Links)
	if len(dom.Links) != 1 {
		t.Fatalf("idle-reset diagnoses linking to a connection: %q, want one", dom.Links)
	}
	failed, _ = strconv.ParseUint(strings.TrimPrefix(dom.Links[0], "#conn-"), 10, 64)
	sel := "#conn-" + strconv.FormatUint(failed, 10)
	p.Eval(`[...document.querySelectorAll("`+sel+` svg rect.idle > title")].map(t => t.textContent)`, &dom.Shades)
	p.Eval(`document.querySelectorAll("`+sel+` svg path.mark-reset-in").length`, &dom.Resets)
	found := false
	for _, c := range r.Cookies {
		found = found || c == failed
	}
	if !found {
		t.Errorf("the diagnosis links to connection %d; the client's sockets are %v", failed, r.Cookies)
	}
	if len(dom.Shades) != 1 || !strings.Contains(dom.Shades[0], "no data from the peer for 3.") {
		t.Errorf("idle shading %q, want one band of about 3.5s of silence", dom.Shades)
	}
	if want := countResets(t, recording, failed); dom.Resets != want || want == 0 {
		t.Errorf("%d received resets drawn, the recording has %d on connection %d", dom.Resets, want, failed)
	}
	t.Logf("idle band: %q", dom.Shades)
	if shots := os.Getenv("SENDTRACE_SCREENSHOTS"); shots != "" {
		p.ScreenshotOf(sel, filepath.Join(shots, "html-report-idle-reset.png"))
	}
}

func countResets(t *testing.T, path string, cookie uint64) int {
	t.Helper()
	recorded, _ := testutil.ReadRecording(t, path)
	n := 0
	for _, e := range recorded {
		if e.Kind == events.KindReceiveReset && e.Cookie == cookie {
			n++
		}
	}
	return n
}
