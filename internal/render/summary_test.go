package render

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"
)

// tableRows returns the trimmed cells of the data rows of the table under
// the given title (header excluded), or nil when there is no such table.
func tableRows(out, title string) [][]string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, title) {
			continue
		}
		var rows [][]string
		borders := 0
		for _, r := range lines[i+1:] {
			if strings.HasPrefix(r, "+") {
				if borders++; borders == 3 {
					return rows
				}
				continue
			}
			if !strings.HasPrefix(r, "|") {
				return rows
			}
			if borders < 2 {
				continue // header
			}
			var cells []string
			for _, c := range strings.Split(strings.Trim(r, "|"), "|") {
				cells = append(cells, strings.TrimSpace(c))
			}
			rows = append(rows, cells)
		}
		return rows
	}
	return nil
}

func render(t *testing.T, s *Summary, totals *events.Totals) string {
	t.Helper()
	var out bytes.Buffer
	if err := s.Render(&out, totals); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func rowsEqual(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func observeAll(s *Summary, evs ...events.Event) {
	for i := range evs {
		s.Observe(&evs[i])
	}
}

func TestSummaryEmpty(t *testing.T) {
	if got := render(t, NewSummary(), nil); got != "no failed sends were seen\n" {
		t.Errorf("empty summary = %q", got)
	}
	if got := render(t, NewSummary(), &events.Totals{}); got != "no failed sends were seen\n" {
		t.Errorf("empty summary with totals = %q", got)
	}
	var zero Summary // the zero value works too
	if got := render(t, &zero, nil); got != "no failed sends were seen\n" {
		t.Errorf("zero summary = %q", got)
	}
}

var (
	ecomm   = events.ECOMM
	ereset  = events.ECONNRESET
	epipe   = events.EPIPE
	webDst  = "93.184.216.34:443"
	dbDst   = "10.0.0.9:5432"
	commStr = events.ErrnoString(ecomm)
)

// gso makes e a retransmit of kind k carrying segs segments.
func gso(e events.Event, k events.RetransKind, segs uint32) events.Event {
	e.RetransKind, e.Segs = k, segs
	return e
}

func sampleRun() []events.Event {
	return []events.Event{
		gso(retransmit(webDst), events.RetransRTO, 1),
		gso(retransmit(webDst), events.RetransFast, 10),
		resetRecv(webDst),
		sendError(ecomm, webDst, "curl", 4242, 1448),
		sendError(ecomm, webDst, "curl", 4242, 1448),
		sendError(ereset, webDst, "curl", 4242, 65536),
		sendError(epipe, dbDst, "postgres", 901, 0),
	}
}

func sampleTotals() *events.Totals {
	return &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{
		{PID: 4242, Kind: events.KindSendError, Errno: ecomm, Dst: netip.MustParseAddrPort(webDst)}:        {Count: 2, Bytes: 2896},
		{PID: 4242, Kind: events.KindSendError, Errno: ereset, Dst: netip.MustParseAddrPort(webDst)}:       {Count: 1, Bytes: 65536},
		{PID: 901, Kind: events.KindSendError, Errno: epipe, Dst: netip.MustParseAddrPort(dbDst)}:          {Count: 1},
		{PID: 4242, Kind: events.KindRetransmit, Dst: netip.MustParseAddrPort(webDst), Detail: "rto"}:      {Count: 1, Bytes: 1448, Segs: 1},
		{PID: 4242, Kind: events.KindRetransmit, Dst: netip.MustParseAddrPort(webDst), Detail: "fast"}:     {Count: 1, Bytes: 1448, Segs: 10},
		{PID: 4242, Kind: events.KindRetransmit, Dst: netip.MustParseAddrPort(webDst), Detail: "untraced"}: {Segs: 3},
		{PID: 4242, Kind: events.KindReceiveReset, Dst: netip.MustParseAddrPort(webDst)}:                   {Count: 1},
	}}
}

func TestSummaryComplete(t *testing.T) {
	s := NewSummary()
	observeAll(s, sampleRun()...)
	out := render(t, s, sampleTotals())

	rowsEqual(t, "failed sends", tableRows(out, "Failed sends by errno"), [][]string{
		{commStr, "curl/4242", "2", "2896", "2", webDst + " (2)"},
		{events.ErrnoString(epipe), "postgres/901", "1", "0", "1", dbDst + " (1)"},
		{events.ErrnoString(ereset), "curl/4242", "1", "65536", "1", webDst + " (1)"},
	})
	if !strings.Contains(out, "Failed sends by errno and process (kernel counted 4, exact; 4 received)") {
		t.Error("failed sends title missing the count")
	}
	// From the 0-byte bucket to 65536-131071, empty buckets between kept
	// so the shape shows.
	sizes := tableRows(out, "Failed send sizes")
	if len(sizes) != 18 {
		t.Fatalf("size buckets: %q", sizes)
	}
	bar := strings.Repeat("#", 40)
	half := strings.Repeat("#", 20)
	rowsEqual(t, "size buckets (ends)", [][]string{sizes[0], sizes[1], sizes[2], sizes[17]}, [][]string{
		{"0", "1", half}, {"1", "0", ""}, {"2 - 3", "0", ""}, {"65536 - 131071", "1", half},
	})
	found := false
	for _, r := range sizes {
		if r[0] == "1024 - 2047" {
			found = true
			if r[1] != "2" || r[2] != bar {
				t.Errorf("1024 bucket = %q", r)
			}
		}
	}
	if !found {
		t.Error("no 1024 - 2047 bucket")
	}

	rowsEqual(t, "connections", tableRows(out, "Retransmits, resets"), [][]string{
		{webDst, "14", "rto 1, fast 10, untraced 3", "2", "2896", "1", "0", "0"},
	})
	if !strings.Contains(out, "by destination (kernel's totals, exact") {
		t.Error("destination table title does not say its segments are the kernel's")
	}
	rowsEqual(t, "kernel totals", tableRows(out, "Kernel totals"), [][]string{
		{"curl/4242", "send_error", commStr, "2", "-", "2896", "2"},
		{"postgres/901", "send_error", events.ErrnoString(epipe), "1", "-", "0", "1"},
		{"curl/4242", "send_error", events.ErrnoString(ereset), "1", "-", "65536", "1"},
		{"curl/4242", "retransmit/fast", "-", "1", "10", "1448", "1"},
		{"curl/4242", "retransmit/rto", "-", "1", "1", "1448", "1"},
		{"curl/4242", "receive_reset", "-", "1", "-", "0", "1"},
		{"curl/4242", "retransmit/untraced", "-", "0", "3", "0", "0"},
	})
	if !strings.Contains(out, "\nstream complete: 7 events received, kernel counted 7\n") {
		t.Errorf("no completeness line:\n%s", out)
	}
	for _, bad := range []string{"lost events", "incomplete", "no failed sends"} {
		if strings.Contains(out, bad) {
			t.Errorf("complete run mentions %q:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "| ECOMM (communication error on send)   | curl/4242    |     2 |  2896 |        2 | 93.184.216.34:443 (2)   |") {
		t.Errorf("failed sends table layout changed:\n%s", out)
	}
}

func TestSummaryLost(t *testing.T) {
	s := NewSummary()
	run := sampleRun()
	observeAll(s, run[1:]...) // one retransmit lost in the kernel
	tot := sampleTotals()
	tot.ByKey[events.TotalsKey{PID: 4242, Kind: events.KindSendError, Errno: ecomm, Dst: netip.MustParseAddrPort(webDst)}] = events.TotalsValue{Count: 5, Bytes: 7240}
	tot.LostKernel, tot.LostUser = 3, 1
	out := render(t, s, tot)

	for _, want := range []string{
		"\nlost events: 4 (kernel ring buffer full: 3, userspace: 1)\n",
		"\nstream incomplete: 6 events received, kernel counted 10, 4 lost\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	rowsEqual(t, "per kind", tableRows(out, "Received and counted by kind"), [][]string{
		{"send_error", "4", "7", "3"},
		{"retransmit", "1", "2", "1"},
		{"receive_reset", "1", "1", "0"},
	})
	// The exact table keeps the kernel's numbers.
	totals := tableRows(out, "Kernel totals")
	if fmt.Sprint(totals[0]) != fmt.Sprint([]string{"curl/4242", "send_error", commStr, "5", "-", "7240", "2"}) {
		t.Errorf("kernel totals first row = %q", totals[0])
	}
}

func TestSummaryNoSendsButOthers(t *testing.T) {
	s := NewSummary()
	observeAll(s, retransmit(webDst), resetRecv(webDst))
	st := events.Event{Kind: events.KindStateChange, PID: 4242, Comm: "curl", OwnerKnown: true}
	s.Observe(&st) // a kind the kernel keeps no totals for
	out := render(t, s, &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{
		{PID: 4242, Kind: events.KindRetransmit}:   {Count: 1, Bytes: 1448},
		{PID: 4242, Kind: events.KindReceiveReset}: {Count: 1},
	}})
	if !strings.HasPrefix(out, "no failed sends were seen\n") {
		t.Errorf("no leading line:\n%s", out)
	}
	if tableRows(out, "Failed sends") != nil || tableRows(out, "Failed send sizes") != nil {
		t.Errorf("empty sections drawn:\n%s", out)
	}
	if !strings.Contains(out, "stream complete: 2 events received, kernel counted 2") {
		t.Errorf("uncounted kind spoils completeness:\n%s", out)
	}
}

func TestSummaryOnlyKernelCounted(t *testing.T) {
	// Every event lost: the exact totals still tell the story.
	tot := sampleTotals()
	tot.LostKernel = 7
	out := render(t, NewSummary(), tot)
	for _, want := range []string{
		"Failed sends by errno and process (kernel counted 4, exact; 0 received)",
		"stream incomplete: 0 events received, kernel counted 7, 7 lost",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if rows := tableRows(out, "Kernel totals"); len(rows) != 7 || rows[0][0] != "?/4242" {
		t.Errorf("kernel totals without comms: %q", rows)
	}
}

func TestSummaryInconsistentAndUnavailable(t *testing.T) {
	s := NewSummary()
	observeAll(s, sampleRun()...)
	tot := sampleTotals()
	delete(tot.ByKey, events.TotalsKey{PID: 901, Kind: events.KindSendError, Errno: epipe, Dst: netip.MustParseAddrPort(dbDst)})
	out := render(t, s, tot)
	if !strings.Contains(out, "stream inconsistent: 7 events received, kernel counted only 6") {
		t.Errorf("inconsistent run:\n%s", out)
	}
	if rows := tableRows(out, "Received and counted by kind"); len(rows) == 0 || rows[0][3] != "-1" {
		t.Errorf("per kind: %q", rows)
	}

	out = render(t, s, nil)
	if !strings.Contains(out, "kernel totals unavailable: 7 events received, completeness unknown") {
		t.Errorf("nil totals:\n%s", out)
	}
	if strings.Contains(out, "Kernel totals") {
		t.Error("kernel totals table without totals")
	}
}

func TestSummaryMaxRows(t *testing.T) {
	s := NewSummary()
	s.MaxRows = 2
	for i := range 5 {
		e := sendError(epipe, fmt.Sprintf("10.0.0.%d:80", i+1), "app", uint32(i+1), 10)
		s.Observe(&e)
	}
	out := render(t, s, nil)
	if rows := tableRows(out, "Failed sends"); len(rows) != 2 {
		t.Errorf("rows = %q", rows)
	}
	if !strings.Contains(out, "... 3 more rows\n") {
		t.Errorf("no truncation note:\n%s", out)
	}
}

func TestSummaryHostileComm(t *testing.T) {
	s := NewSummary()
	e := sendError(epipe, dbDst, "\x1b]0;pwned\x07", 5, 1)
	s.Observe(&e)
	out := render(t, s, nil)
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("raw control bytes in summary: %q", out)
	}
}

func TestSummaryWriteError(t *testing.T) {
	s := NewSummary()
	observeAll(s, sampleRun()...)
	if err := s.Render(&failWriter{n: 2}, sampleTotals()); err == nil {
		t.Error("write error not returned")
	}
}

func TestSummarySaysTotalsInexact(t *testing.T) {
	var buf bytes.Buffer
	s := NewSummary()
	tot := &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{{PID: 1, Kind: events.KindSendError, Errno: 32}: {Count: 1}}, Uncounted: 7}
	s.Observe(&events.Event{Kind: events.KindSendError, PID: 1, Errno: 32})
	if err := s.Render(&buf, tot); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "kernel totals inexact: 7 events") {
		t.Errorf("summary does not say the totals are inexact:\n%s", buf.String())
	}
}

// Retransmits are counted in segments, by kind and per destination in the
// kernel; the table sums the destinations and shows the segments,
// untraced ones (no event) included, without spoiling completeness.
func TestSummaryRetransmitSegments(t *testing.T) {
	s := NewSummary()
	a, b := retransmit(webDst), retransmit(dbDst)
	a.RetransKind, b.RetransKind = events.RetransFast, events.RetransFast
	a.Segs, b.Segs = 45, 30
	observeAll(s, a, b)
	web, db := netip.MustParseAddrPort(webDst), netip.MustParseAddrPort(dbDst)
	out := render(t, s, &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{
		{PID: 4242, Kind: events.KindRetransmit, Dst: web, Detail: "fast"}:     {Count: 1, Bytes: 1448, Segs: 45},
		{PID: 4242, Kind: events.KindRetransmit, Dst: db, Detail: "fast"}:      {Count: 1, Bytes: 1448, Segs: 30},
		{PID: 4242, Kind: events.KindRetransmit, Dst: web, Detail: "untraced"}: {Segs: 45},
	}})
	rowsEqual(t, "kernel totals", tableRows(out, "Kernel totals"), [][]string{
		{"curl/4242", "retransmit/fast", "-", "2", "75", "2896", "2"},
		{"curl/4242", "retransmit/untraced", "-", "0", "45", "0", "0"},
	})
	if !strings.Contains(out, "stream complete: 2 events received, kernel counted 2") {
		t.Errorf("untraced segments spoil completeness:\n%s", out)
	}
}
