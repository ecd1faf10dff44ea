package htmlreport

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/join"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// mixedKinds retransmits every kind: connection 1 by RTO only, the others
// fast retransmits of up to 45 segments, tail loss probes, RTOs, and one
// that was not sent (EBUSY).
func mixedKinds(c, r int) (events.RetransKind, uint32, int32) {
	if c == 0 {
		return events.RetransRTO, 1, 0
	}
	switch r % 5 {
	case 0:
		return events.RetransTLP, 1, 0
	case 1, 2:
		return events.RetransFast, uint32(1 + (r*7)%45), 0
	case 3:
		if r == 3 {
			return events.RetransFast, 0, -16
		}
	}
	return events.RetransRTO, 2, 0
}

// recordedKinds counts a recording's retransmit events per connection and
// kind class, and the failed ones.
func recordedKinds(t *testing.T, path string) map[string]map[string]int {
	t.Helper()
	recorded, _ := testutil.ReadRecording(t, path)
	out := map[string]map[string]int{}
	for _, e := range recorded {
		if e.Kind != events.KindRetransmit {
			continue
		}
		c := strconv.FormatUint(e.Cookie, 10)
		if out[c] == nil {
			out[c] = map[string]int{}
		}
		out[c]["retrans-"+e.RetransKind.String()]++
		if e.RetransErr != 0 {
			out[c]["rtx-failed"]++
		}
	}
	return out
}

// TestRetransmitMarksByKind opens in Chromium the page of a recording with
// every kind of retransmit: each connection's graph has one mark per
// retransmit event, of its kind's class, as many of each kind as the
// recording holds, and a legend that names each kind it drew.
func TestRetransmitMarksByKind(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	rec := filepath.Join(t.TempDir(), "kinds.jsonl")
	syntheticKinds(t, rec, "bulk", 3, 12, mixedKinds)
	want := recordedKinds(t, rec)
	page := writePage(t, rec, Options{})
	p := testutil.OpenPage(t, ctx, page, 1200)
	p.RequireSelfContained(page)

	var got map[string]struct {
		Marks  int
		Kinds  map[string]int
		Legend []string
	}
	p.Eval(`Object.fromEntries([...document.querySelectorAll("svg.timeline")].map(s => [s.dataset.cookie, {
		marks: s.querySelectorAll(".mark-retransmit").length,
		kinds: Object.fromEntries(["retrans-rto", "retrans-fast", "retrans-tlp", "retrans-syn", "retrans-synack", "retrans-unknown", "rtx-failed"].map(k =>
			[k, s.querySelectorAll(".mark-retransmit." + k).length])),
		legend: [...s.querySelectorAll("text.legend")].map(l => l.textContent),
	}]))`, &got)
	if len(got) != len(want) {
		t.Fatalf("%d timelines, the recording has %d connections with retransmits", len(got), len(want))
	}
	for c, kinds := range want {
		g := got[c]
		total := 0
		for class, n := range kinds {
			if class != "rtx-failed" {
				total += n
			}
			if g.Kinds[class] != n {
				t.Errorf("connection %s: %d marks of class %s, the recording has %d such retransmits", c, g.Kinds[class], class, n)
			}
			if name := class[len("retrans-"):]; class != "rtx-failed" && !containsPrefix(g.Legend, name+" "+strconv.Itoa(n)+" (") {
				t.Errorf("connection %s: the legend %q does not say %s %d", c, g.Legend, name, n)
			}
		}
		if g.Marks != total {
			t.Errorf("connection %s: %d retransmit marks, %d retransmit events", c, g.Marks, total)
		}
		t.Logf("connection %s: marks %v, legend %q", c, g.Kinds, g.Legend)
	}
	// The kinds are told apart by colour as well as by shape.
	var fills map[string]string
	p.Eval(`Object.fromEntries(["retrans-rto", "retrans-fast", "retrans-tlp"].map(k =>
		[k, getComputedStyle(document.querySelector(".mark-retransmit." + k + ":not(.rtx-failed)")).fill]))`, &fills)
	if fills["retrans-rto"] == fills["retrans-fast"] || fills["retrans-fast"] == fills["retrans-tlp"] || fills["retrans-rto"] == fills["retrans-tlp"] {
		t.Errorf("kinds share a colour: %v", fills)
	}
}

func containsPrefix(ss []string, p string) bool {
	for _, s := range ss {
		if len(s) >= len(p) && bytes.Contains([]byte(s), []byte(p)) {
			return true
		}
	}
	return false
}

// TestPrintStyle prints the page of a recording as a reader who prefers a
// dark theme would: the print style must turn the dark theme off (black
// on white, the light palette's marks), show the contents of the folded
// sections (the event lists under each graph) without a script, and
// Chromium's print to PDF must give a document of several pages. The
// page of both ends shares the style and must print alike.
func TestPrintStyle(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	rec := filepath.Join(t.TempDir(), "print.jsonl")
	syntheticKinds(t, rec, "bulk", 3, 12, mixedKinds)
	checkPrint(t, ctx, writePage(t, rec, Options{}))
	client, server := twoEnds(t, t.TempDir(), "client", join.ResetMiddlebox)
	both, _ := writeBothEndsPage(t, client, server)
	checkPrint(t, ctx, both)
}

func checkPrint(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	p := testutil.OpenPage(t, ctx, page, 1200)

	type look struct {
		Bg, Fg, RTO   string
		Folded, Shown int
	}
	probe := func() look {
		var l look
		p.Eval(`(() => {
			const folded = [...document.querySelectorAll("details:not([open])")];
			return {bg: getComputedStyle(document.body).backgroundColor, fg: getComputedStyle(document.body).color,
				rto: getComputedStyle(document.querySelector(".mark-retransmit.retrans-rto")).fill,
				folded: folded.length,
				shown: folded.filter(d => [...d.children].some(c => c.tagName !== "SUMMARY" && c.checkVisibility())).length};
		})()`, &l)
		return l
	}
	p.DarkScheme(false)
	light := probe()
	p.DarkScheme(true)
	dark := probe()
	p.PrintMedia(true)
	printed := probe()
	t.Logf("screen light %+v, screen dark %+v, print (dark reader) %+v", light, dark, printed)
	if dark.Bg == light.Bg {
		t.Fatalf("the dark theme did not apply on screen (%s): the test proves nothing", dark.Bg)
	}
	if light.Folded == 0 || light.Shown != 0 {
		t.Fatalf("%d folded sections, %d of them shown on screen: the test proves nothing", light.Folded, light.Shown)
	}
	if printed.Bg != "rgb(255, 255, 255)" || printed.Fg != "rgb(0, 0, 0)" {
		t.Errorf("printed page is %s on %s, want black on white", printed.Fg, printed.Bg)
	}
	if printed.RTO != light.RTO {
		t.Errorf("printed RTO marks are %s, the light theme's are %s: the dark palette leaked into print", printed.RTO, light.RTO)
	}
	if printed.Shown != printed.Folded {
		t.Errorf("%d of %d folded sections show their contents in print", printed.Shown, printed.Folded)
	}

	pdf := p.PrintToPDF()
	pages := bytes.Count(pdf, []byte("/Type /Page\n")) + bytes.Count(pdf, []byte("/Type /Page/")) + bytes.Count(pdf, []byte("/Type /Page>"))
	if pages == 0 {
		pages = bytes.Count(pdf, []byte("/Type/Page")) - bytes.Count(pdf, []byte("/Type/Pages"))
	}
	t.Logf("PDF: %d bytes, %d pages", len(pdf), pages)
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || pages < 2 {
		t.Errorf("print to PDF gave %d bytes and %d pages (%q...), want a document of 2 or more", len(pdf), pages, fmt.Sprintf("%.8s", pdf))
	}
}
