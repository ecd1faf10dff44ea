package record_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// bothEndsPage writes `report --html` of recordings, opens it in headless
// Chromium and reads it. SENDTRACE_SCREENSHOTS=DIR keeps a screenshot of
// its first drawn connection there as html-both-ends-NAME.png.
func bothEndsPage(t *testing.T, ctx context.Context, name string, recordings ...string) (*testutil.BothEndsPage, string) {
	t.Helper()
	page := filepath.Join(t.TempDir(), name+".html")
	sendtrace(t, append([]string{"report", "--html", page}, recordings...)...)
	p := testutil.OpenPage(t, ctx, page, 1200)
	p.RequireSelfContained(page)
	dom := p.ReadBothEndsPage()
	if shots := os.Getenv("SENDTRACE_SCREENSHOTS"); shots != "" && len(dom.Joined) > 0 {
		p.ScreenshotOf("details.joined", filepath.Join(shots, "html-both-ends-"+name+".png"))
	}
	return dom, page
}

// checkBothEndsPage checks the page of a fault's two recordings against
// what `report -o json` says of them (j) and against the recordings: as
// many connections, each with the reset origin, offset, idle times (an
// upper bound said as one) and local drops of the JSON, and each lane with one mark per event of that end's socket, of
// its kind.
func checkBothEndsPage(t *testing.T, ctx context.Context, name string, b *bothEnds, j *joinReport) {
	t.Helper()
	dom, page := bothEndsPage(t, ctx, name, b.clientRec, b.serverRec)
	checkRefusesOverwrite(t, page, "report", "--html", page, b.clientRec, b.serverRec)
	if dom.Scripts != 1 {
		t.Errorf("%d script elements, want only the page's print helper", dom.Scripts)
	}
	if len(dom.Sections) != 2 || len(dom.Broken) != 0 {
		t.Errorf("recording sections %+v, links without a target %q: want one section a recording, every link with its target", dom.Sections, dom.Broken)
	}
	failed := 0
	for _, c := range j.Joined {
		if c.Failed {
			failed++
		}
	}
	if len(dom.Joined)+len(dom.Listed) != len(j.Joined) || len(dom.Joined) != failed {
		t.Errorf("%d connections drawn and %d listed, -o json has %d joined, %d failed", len(dom.Joined), len(dom.Listed), len(j.Joined), failed)
	}
	if len(dom.Offsets) != len(j.Offsets) {
		t.Fatalf("%d clock offsets on the page, -o json has %d", len(dom.Offsets), len(j.Offsets))
	}
	for i, o := range j.Offsets {
		if ms, err := strconv.ParseFloat(dom.Offsets[i].Ms, 64); err != nil || ms != o.OffsetMs {
			t.Errorf("offset on the page %q ms, -o json %v ms", dom.Offsets[i].Ms, o.OffsetMs)
		}
		if ms, err := strconv.ParseFloat(dom.Offsets[i].WithinMs, 64); err != nil || ms != o.WithinMs {
			t.Errorf("offset bound on the page ± %q ms, -o json ± %v ms", dom.Offsets[i].WithinMs, o.WithinMs)
		}
		if !strings.Contains(dom.Offsets[i].Text, "± "+format.Duration(durationMs(o.WithinMs))) {
			t.Errorf("the offset's text %q does not say ± %s", dom.Offsets[i].Text, format.Duration(durationMs(o.WithinMs)))
		}
	}
	recordings := map[string]string{"client": b.clientRec, "server": b.serverRec}
	for _, c := range j.Joined {
		cookies := strconv.FormatUint(c.Ends[0].Cookie, 10) + " " + strconv.FormatUint(c.Ends[1].Cookie, 10)
		var got *testutil.JoinedOnPage
		for k := range dom.Joined {
			if dom.Joined[k].Cookies == cookies {
				got = &dom.Joined[k]
			}
		}
		if got == nil {
			t.Errorf("connection %s (failed %v) is not drawn", cookies, c.Failed)
			continue
		}
		if got.Origin != c.ResetOrigin {
			t.Errorf("connection %s: reset origin %q on the page, %q in -o json", cookies, got.Origin, c.ResetOrigin)
		}
		for _, m := range got.OriginMarks {
			if !strings.Contains(m, "reset-origin-"+c.ResetOrigin) || c.ResetOrigin == "" {
				t.Errorf("connection %s: a reset mark says %q, -o json says %q", cookies, m, c.ResetOrigin)
			}
		}
		if c.ResetOrigin != "" && len(got.OriginMarks) == 0 {
			t.Errorf("connection %s: no reset mark names its origin %q", cookies, c.ResetOrigin)
		}
		if ms, err := strconv.ParseFloat(got.OffsetMs, 64); err != nil || ms != j.Offsets[0].OffsetMs {
			t.Errorf("connection %s: offset %q ms, -o json %v ms", cookies, got.OffsetMs, j.Offsets[0].OffsetMs)
		}
		for i, e := range c.Ends {
			evs, _ := testutil.ReadRecording(t, recordings[e.Role])
			want := testutil.MarksOf(evs, e.Cookie)
			if !maps.Equal(got.Lanes[i], want) {
				t.Errorf("connection %s, %s lane: marks by kind %v, the %s recording's events of socket %d by kind %v", cookies, e.Role, got.Lanes[i], e.Role, e.Cookie, want)
			}
			idle := "unknown"
			if e.IdleMs != nil {
				idle = format.Duration(durationMs(*e.IdleMs))
				if e.IdleAtMost {
					idle = "at most " + idle
				}
			}
			if i < len(got.Idle) && got.Idle[i] != idle {
				t.Errorf("connection %s: %s idle %q on the page, %s from -o json", cookies, e.Role, got.Idle[i], idle)
			}
			drops := "none"
			if d := e.LocalDrops; d != nil {
				drops = fmt.Sprintf("its host dropped %d of its packets (%d in, %d out; %s)", d.In+d.Out, d.In, d.Out, d.Where)
			}
			if (len(got.Drops) > 0 || drops != "none") && (i >= len(got.Drops) || got.Drops[i] != drops) {
				t.Errorf("connection %s: local drops on the page %q, -o json says the %s's %q", cookies, got.Drops, e.Role, drops)
			}
			if i >= len(got.Names) || !strings.HasPrefix(got.Names[i], e.Role+" · "+e.Host+" · ") || !strings.Contains(got.Names[i], "/"+strconv.Itoa(e.PID)) {
				t.Errorf("lane names %q: lane %d must name the %s on %s, pid %d", got.Names, i, e.Role, e.Host, e.PID)
			}
		}
		reached := ""
		if c.DataReached != nil {
			reached = map[bool]string{true: "yes", false: "no"}[*c.DataReached]
		}
		if got.Reached != reached || (reached != "") != (got.DataMarks[0]+got.DataMarks[1] == 1) {
			t.Errorf("connection %s: data reached %q with %v marks, -o json says %q", cookies, got.Reached, got.DataMarks, reached)
		}
		if !strings.Contains(got.Diagnosis, c.Diagnosis) {
			t.Errorf("connection %s: the page's diagnosis %q, -o json %q", cookies, got.Diagnosis, c.Diagnosis)
		}
		t.Logf("%s: connection %s reset origin %q, lanes %v, origin marks %q, idle %q, drops %q, offset %s ms, data marks %v",
			name, cookies, got.Origin, got.Lanes, got.OriginMarks, got.Idle, got.Drops, got.OffsetMs, got.DataMarks)
	}
}

func durationMs(ms float64) time.Duration { return time.Duration(math.Round(ms * 1e6)) }

// checkApartPages: a recording beside one that saw neither end lists its
// socket as seen at one end only; recordings apart in time join nothing
// and the page says they do not overlap.
func checkApartPages(t *testing.T, ctx context.Context, b *bothEnds, laterServer string) {
	t.Helper()
	one, _ := bothEndsPage(t, ctx, "one-end", b.clientRec, b.other)
	want := strconv.FormatUint(b.client.Sockets[0].Cookie, 10)
	if len(one.Joined)+len(one.Listed) != 0 || len(one.OneEnd) != 1 || one.OneEnd[0] != want || len(one.Overlaps) != 1 || one.Overlaps[0] != "true" {
		t.Errorf("client beside an unrelated recording: %d joined, at one end only %q, overlaps %q; want none joined, %s at one end only, overlapping",
			len(one.Joined)+len(one.Listed), one.OneEnd, one.Overlaps, want)
	}
	apart, _ := bothEndsPage(t, ctx, "apart", b.clientRec, laterServer)
	if len(apart.Joined)+len(apart.Listed)+len(apart.OneEnd) != 0 || len(apart.Overlaps) != 1 || apart.Overlaps[0] != "false" || !strings.Contains(apart.Text, "do not overlap in time") {
		t.Errorf("recordings apart in time: %d joined, at one end only %q, overlaps %q; want nothing and no overlap", len(apart.Joined)+len(apart.Listed), apart.OneEnd, apart.Overlaps)
	}
}
