package record_test

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/report"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestHTMLPages records real faults from one client namespace (two
// clients black-holed until tcp_retries2 gives up, one reset by its peer
// with SO_LINGER 0), twice with different tcp_retries2, and opens the
// report and diff pages in headless Chromium. The pages must load nothing
// but themselves, log no error, and show what the recording holds: each
// diagnosis linked to its connection, the pids and errnos, and one
// retransmit mark per retransmit event of each connection.
//
// SENDTRACE_SCREENSHOTS=DIR keeps the screenshots there (the README's come
// from here); otherwise they go to a temporary directory.
func TestHTMLPages(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.Chromium(t)
	ctx := testutil.Context(t, 4*time.Minute)
	b := newBlackHole(t, ctx)
	resetDst := b.lab.ServerAddr(false, port+1)
	srv := b.lab.Server.StartActor(t, actorBin, "server", "-mode", "reset", "-listen", resetDst.String())
	if _, err := srv.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	shots := os.Getenv("SENDTRACE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}

	run := func(retries2, name string) string {
		b.lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", retries2)
		cs := b.clients(t, ctx, 2, 2*time.Minute)
		rc := b.lab.Client.StartActor(t, actorBin, "client", "-to", resetDst.String(),
			"-until-error", "-count", "0", "-interval", "50ms", "-size", "100", "-timeout", "30s")
		if _, err := rc.WaitPhase(ctx, "start"); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		rec := startRecorder(t, ctx, path, append(cs, rc))
		if err := rc.Release("start"); err != nil {
			t.Fatal(err)
		}
		b.drop(t, ctx, cs)
		finish(t, ctx, append(cs, rc))
		rec.wait(t, ctx)
		b.undrop(t)
		return path
	}
	before := run("5", "retries5.jsonl")
	after := run("3", "retries3.jsonl.zst")

	page := filepath.Join(dir, "report.html")
	sendtrace(t, "report", "--html", page, before)
	checkRefusesOverwrite(t, page, "report", "--html", page, before)
	checkReportPage(t, ctx, before, page, shots)

	diffPage := filepath.Join(dir, "diff.html")
	sendtrace(t, "diff", "--html", diffPage, before, after)
	checkRefusesOverwrite(t, diffPage, "diff", "--html", diffPage, before, after)
	checkDiffPage(t, ctx, before, after, diffPage, shots)
}

// checkRefusesOverwrite runs a command that would write page again: it
// must refuse in one line and leave the page alone, and --force must
// replace it.
func checkRefusesOverwrite(t *testing.T, page string, args ...string) {
	t.Helper()
	old, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sendtraceBin, args...).CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err == nil || strings.Contains(msg, "\n") || !strings.Contains(msg, "--force") {
		t.Errorf("sendtrace %s over an existing page: %v %q; want one line naming --force", strings.Join(args, " "), err, msg)
	}
	if b, _ := os.ReadFile(page); string(b) != string(old) {
		t.Error("the existing page changed")
	}
	sendtrace(t, append(args, "--force")...)
}

// recordedConns counts, per socket, the retransmit events in a recording,
// and gathers the pids and errno names it holds.
func recordedConns(t *testing.T, path string) (rtx map[uint64]int, byKind map[uint64]map[string]int, pids map[uint32]bool, errnos map[string]bool) {
	t.Helper()
	rtx, byKind, pids, errnos = map[uint64]int{}, map[uint64]map[string]int{}, map[uint32]bool{}, map[string]bool{}
	recorded, _ := testutil.ReadRecording(t, path)
	for _, e := range recorded {
		if e.Kind == events.KindRetransmit {
			rtx[e.Cookie]++
			if byKind[e.Cookie] == nil {
				byKind[e.Cookie] = map[string]int{}
			}
			kind := e.RetransKind.String()
			if kind == "" {
				kind = "unknown"
			}
			byKind[e.Cookie]["retrans-"+kind]++
		}
		if e.OwnerKnown {
			pids[e.PID] = true
		}
		if e.Errno != 0 {
			errnos[events.ErrnoName(e.Errno)] = true
		}
	}
	return
}

func checkReportPage(t *testing.T, ctx context.Context, recording, page, shots string) {
	t.Helper()
	rec, err := report.Load(recording, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rtx, byKind, pids, errnos := recordedConns(t, recording)
	p := testutil.OpenPage(t, ctx, page, 1200)
	p.RequireSelfContained(page)

	var dom struct {
		Text      string
		Diagnoses []struct{ Rule, Href, Text string }
		Anchors   []string
		Marks     map[string]int
		Kinds     map[string]map[string]int
		Titled    map[string]int
		Open      int
	}
	p.Eval(`({
		text: document.body.textContent,
		diagnoses: [...document.querySelectorAll("#diagnoses .diag")].map(d => ({rule: d.dataset.rule,
			href: (d.querySelector("a[href^='#conn-']") || {getAttribute: () => ""}).getAttribute("href"), text: d.textContent})),
		anchors: [...document.querySelectorAll("[id^='conn-']")].map(e => e.id),
		marks: Object.fromEntries([...document.querySelectorAll("svg.timeline")].map(s =>
			[s.dataset.cookie, s.querySelectorAll(".mark-retransmit").length])),
		kinds: Object.fromEntries([...document.querySelectorAll("svg.timeline")].map(s =>
			[s.dataset.cookie, Object.fromEntries(["rto", "fast", "tlp", "syn", "synack", "unknown"].map(k =>
				["retrans-" + k, s.querySelectorAll(".mark-retransmit.retrans-" + k).length]).filter(([, n]) => n > 0))])),
		titled: Object.fromEntries([...document.querySelectorAll("svg.timeline")].map(s =>
			[s.dataset.cookie, [...s.querySelectorAll(".mark-retransmit > title")].filter(x => x.textContent.includes("retransmit") && x.textContent.includes("seq=")).length])),
		open: document.querySelectorAll("details.conn[open]").length,
	})`, &dom)

	if len(rec.Diagnoses) == 0 {
		t.Fatal("the recording has no diagnosis: the faults did not happen")
	}
	rules := map[string]int{}
	for _, d := range rec.Diagnoses {
		rules[d.Rule]++
		want := "#conn-" + strconv.FormatUint(d.Cookie, 10)
		found := false
		for _, got := range dom.Diagnoses {
			if got.Rule == d.Rule && got.Href == want && strings.Contains(got.Text, d.NextStep) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s diagnosis on the page linking to %s with its next step", d.Rule, want)
		}
		if !slices.Contains(dom.Anchors, want[1:]) {
			t.Errorf("the page has no element %s for the %s diagnosis to link to", want, d.Rule)
		}
	}
	if rules["black-hole"] != 2 || rules["peer-reset"] != 1 {
		t.Errorf("diagnoses by rule %v, want 2 black-hole and 1 peer-reset", rules)
	}
	for pid := range pids {
		if !strings.Contains(dom.Text, "/"+strconv.FormatUint(uint64(pid), 10)) {
			t.Errorf("pid %d is not on the page", pid)
		}
	}
	for name := range errnos {
		if !strings.Contains(dom.Text, name) {
			t.Errorf("errno %s is not on the page", name)
		}
	}
	for _, want := range []string{"ETIMEDOUT", "ECONNRESET"} {
		if !errnos[want] {
			t.Errorf("the recording holds no %s: the faults did not happen", want)
		}
	}
	drawn := 0
	for cookie, n := range dom.Marks {
		c, _ := strconv.ParseUint(cookie, 10, 64)
		if n != rtx[c] {
			t.Errorf("connection %d: %d retransmit marks, the recording has %d retransmit events", c, n, rtx[c])
		}
		if !maps.Equal(dom.Kinds[cookie], byKind[c]) {
			t.Errorf("connection %d: retransmit marks by kind %v, the recording's retransmit events by kind %v", c, dom.Kinds[cookie], byKind[c])
		}
		if dom.Titled[cookie] != n {
			t.Errorf("connection %d: %d of %d retransmit marks have the event in their hover text", c, dom.Titled[cookie], n)
		}
		drawn += n
	}
	for c, n := range rtx {
		if _, ok := dom.Marks[strconv.FormatUint(c, 10)]; !ok && n > 0 {
			t.Errorf("connection %d has %d retransmits and no timeline", c, n)
		}
	}
	if drawn == 0 || len(dom.Marks) != 3 || dom.Open != 3 {
		t.Errorf("%d timelines (%d open) with %d retransmit marks; want the 3 failed connections drawn and open, with retransmits", len(dom.Marks), dom.Open, drawn)
	}
	t.Logf("report page: %d diagnoses, timelines with retransmit marks %v by kind %v (recording: %v by kind %v)", len(dom.Diagnoses), dom.Marks, dom.Kinds, rtx, byKind)

	p.ScreenshotTop(filepath.Join(shots, "html-report.png"), 1500)
	var first string
	for _, d := range rec.Diagnoses {
		if d.Rule == "black-hole" {
			first = "#conn-" + strconv.FormatUint(d.Cookie, 10)
			break
		}
	}
	p.ScreenshotOf(first, filepath.Join(shots, "html-report-black-hole.png"))
	for _, d := range rec.Diagnoses {
		if d.Rule == "peer-reset" {
			p.ScreenshotOf("#conn-"+strconv.FormatUint(d.Cookie, 10), filepath.Join(shots, "html-report-peer-reset.png"))
		}
	}
	p.DarkScheme(true)
	p.ScreenshotOf(first, filepath.Join(shots, "html-report-black-hole-dark.png"))
}

func checkDiffPage(t *testing.T, ctx context.Context, before, after, page, shots string) {
	t.Helper()
	a, err := report.Load(before, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := report.Load(after, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := report.Compare(a, b)
	p := testutil.OpenPage(t, ctx, page, 1200)
	p.RequireSelfContained(page)
	var dom struct {
		Sysctls [][]string
		Metrics [][]string
		TTF     string
		Dots    map[string]int
	}
	p.Eval(`({
		sysctls: [...document.querySelectorAll("#sysctls tr")].slice(1).map(r => [...r.cells].map(c => c.textContent)),
		metrics: [...document.querySelectorAll("#behaviour tr")].slice(1).map(r => [r.cells[0].textContent, r.cells[4].textContent]),
		ttf: document.querySelector("#ttf p").textContent,
		dots: {before: document.querySelectorAll("#ttf circle.ttf-before").length, after: document.querySelectorAll("#ttf circle.ttf-after").length},
	})`, &dom)
	if len(dom.Sysctls) != 1 || len(dom.Sysctls[0]) != 3 || dom.Sysctls[0][0] != "net.ipv4.tcp_retries2" || dom.Sysctls[0][1] != "5" || dom.Sysctls[0][2] != "3" {
		t.Errorf("sysctls on the diff page %q, want only net.ipv4.tcp_retries2 5 -> 3", dom.Sysctls)
	}
	if len(dom.Metrics) != len(d.Metrics) {
		t.Errorf("%d behaviour rows, Compare has %d", len(dom.Metrics), len(d.Metrics))
	}
	for i, m := range d.Metrics {
		if i < len(dom.Metrics) && (dom.Metrics[i][0] != m.Name || dom.Metrics[i][1] != m.Verdict) {
			t.Errorf("behaviour row %d: %q, want %q with verdict %q", i, dom.Metrics[i], m.Name, m.Verdict)
		}
	}
	// Two failed connections a side are below MinTTFSamples: the page must
	// say so, not show a change.
	if d.TTF.Verdict != report.VerdictTooFew || !strings.Contains(dom.TTF, "Verdict: "+report.VerdictTooFew) {
		t.Errorf("time to failure verdict %q, page says %q; want %q", d.TTF.Verdict, dom.TTF, report.VerdictTooFew)
	}
	if dom.Dots["before"] != len(a.TTF()) || dom.Dots["after"] != len(b.TTF()) || len(a.TTF()) != 2 {
		t.Errorf("time-to-failure dots %v, recordings have %d and %d failed connections", dom.Dots, len(a.TTF()), len(b.TTF()))
	}
	t.Logf("diff page: sysctls %q, ttf %q", dom.Sysctls, dom.TTF)
	p.Screenshot(filepath.Join(shots, "html-diff.png"))
}
