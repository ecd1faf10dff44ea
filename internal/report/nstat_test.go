package report

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
)

const clientNetns = 4026532387

// countersRec writes a recording whose events come from one namespace,
// with the kernel's totals in segments and that namespace's counters.
func countersRec(t *testing.T, name string, f session.Filters, segs map[string]uint64, delta map[string]int64, from string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	h := &record.Header{Description: session.Description{SendtraceVersion: "test", Filters: f,
		StartMonoNS: 1000 * sec, BootTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	h.StartTime = h.Wall(h.StartMonoNS)
	w, err := record.Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	tot := &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}}
	dst := netip.MustParseAddrPort("198.18.0.2:5201")
	for kind, n := range segs {
		k, _ := events.ParseRetransKind(kind)
		if k != events.RetransUntraced {
			e := events.Event{Kind: events.KindRetransmit, PID: 77, Comm: "iperf3", OwnerKnown: true, Cookie: 5, Netns: clientNetns,
				Dst: dst, Mono: 1001 * sec, RetransKind: k, Segs: uint32(n)}
			e.Time = h.Wall(e.Mono)
			if err := w.WriteEvent(&e); err != nil {
				t.Fatal(err)
			}
		}
		tk := events.TotalsKey{PID: 77, Kind: events.KindRetransmit, Dst: dst, Detail: kind}
		tot.ByKey[tk] = events.TotalsValue{Count: 1, Segs: n}
	}
	// The recorder reads the sysctls of every namespace events came
	// from; diff pairs namespaces by them.
	sysctls := []session.NetnsSysctls{{Netns: session.Netns{PID: 77, Inode: clientNetns}, Comm: "iperf3", Sysctls: map[string]string{"net.ipv4.tcp_retries2": "15"}}}
	end := &session.End{Time: h.Wall(1004 * sec), MonoNS: 1004 * sec, Totals: tot, Namespaces: sysctls, Counters: []session.NetnsCounters{{
		Netns: session.Netns{PID: 77, Inode: clientNetns}, Comm: "iperf3", From: from,
		Start: h.StartTime, End: h.Wall(1004 * sec), Delta: delta,
	}}}
	if err := w.Close(record.NewFooter(end, h, w.Events(), nil, "events")); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadBuild(t *testing.T, path string) (*Recording, *Report) {
	t.Helper()
	rec, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rec, Build(rec, BuildOptions{})
}

func checkOf(n NetnsCounters, counter string) *CounterCheck {
	for i := range n.Compared {
		if n.Compared[i].Counter == counter {
			return &n.Compared[i]
		}
	}
	return nil
}

// An unfiltered recording saw every process: TcpRetransSegs must equal
// sendtrace's segments, untraced ones included, and a difference is
// shown as one.
func TestNamespaceCountersBesideTotals(t *testing.T) {
	segs := map[string]uint64{"fast": 40, "rto": 3, "tlp": 2, "untraced": 5}
	delta := map[string]int64{"TcpRetransSegs": 50, "TcpExtTCPFastRetrans": 42, "TcpExtTCPTimeouts": 2, "TcpExtTCPSlowStartRetrans": 1,
		"TcpExtTCPLossProbes": 9, "TcpOutSegs": 5000, "IpExtOutOctets": 7_000_000, "TcpExtTCPDelivered": 4900, "TcpExtTCPLostRetransmit": 3}
	rec, rep := loadBuild(t, countersRec(t, "a.jsonl", session.Filters{}, segs, delta, "start"))
	if len(rep.NetnsCounters) != 1 {
		t.Fatalf("namespace counters %+v", rep.NetnsCounters)
	}
	n := rep.NetnsCounters[0]
	if rs := checkOf(n, "TcpRetransSegs"); rs == nil || rs.SendtraceValue != 50 || rs.Expect != ExpectEqual || rs.Verdict != CounterAgree {
		t.Errorf("TcpRetransSegs: %+v", rs)
	}
	if c := checkOf(n, "TcpExtTCPTimeouts + TcpExtTCPSlowStartRetrans"); c == nil || c.CounterValue != 3 || c.SendtraceValue != 3 || c.Verdict != CounterAgree {
		t.Errorf("timer and loss recovery: %+v", c)
	}
	if c := checkOf(n, "TcpExtTCPSynRetrans"); c != nil {
		t.Errorf("a comparison of counters that are 0 on both sides: %+v", c)
	}
	var names []string
	for _, m := range n.Moved {
		names = append(names, m.Name)
	}
	want := "TcpRetransSegs TcpExtTCPTimeouts TcpExtTCPLossProbes TcpExtTCPFastRetrans TcpExtTCPSlowStartRetrans TcpExtTCPLostRetransmit IpExtOutOctets TcpExtTCPDelivered TcpOutSegs"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("moved in the order\n%s, want\n%s", got, want)
	}
	var b bytes.Buffer
	if err := WriteText(&b, rec, rep); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, s := range []string{
		"Namespace counters of net:[4026532387] (through iperf3/77, from the start to the end, 4s)",
		"the recording was not filtered",
		"retransmitted segments   TcpRetransSegs", "segments, every kind (5 untraced)", "equal", "agree",
		"TcpExtTCPLossProbes: a probe that sends new data counts here and retransmits nothing",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("report text lacks %q:\n%s", s, text)
		}
	}

	// One segment more in the namespace than sendtrace saw, unfiltered:
	// that is a difference, not agreement.
	delta["TcpRetransSegs"] = 51
	rec, rep = loadBuild(t, countersRec(t, "b.jsonl", session.Filters{}, segs, delta, "start"))
	if rs := checkOf(rep.NetnsCounters[0], "TcpRetransSegs"); rs.Verdict != CounterDiffer {
		t.Errorf("51 against 50 unfiltered: %+v", rs)
	}
	b.Reset()
	if err := WriteText(&b, rec, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "DIFFER by 1") {
		t.Errorf("report text does not show the difference:\n%s", b.String())
	}
}

// Filtered to some processes, the namespace counts more than sendtrace
// saw, and only namespace >= traced is claimed; a namespace found at its
// first event is not compared at all.
func TestNamespaceCountersFilteredAndLate(t *testing.T) {
	segs := map[string]uint64{"fast": 40}
	delta := map[string]int64{"TcpRetransSegs": 90, "TcpExtTCPFastRetrans": 80}
	_, rep := loadBuild(t, countersRec(t, "f.jsonl", session.Filters{Comms: []string{"iperf3"}}, segs, delta, "start"))
	n := rep.NetnsCounters[0]
	rs := checkOf(n, "TcpRetransSegs")
	if rs == nil || rs.Expect != ExpectAtLeast || rs.Verdict != CounterAgree || !strings.Contains(n.Scope, "comm=iperf3") {
		t.Errorf("filtered: %+v, scope %q", rs, n.Scope)
	}
	_, rep = loadBuild(t, countersRec(t, "l.jsonl", session.Filters{}, segs, delta, "first event"))
	if rs := checkOf(rep.NetnsCounters[0], "TcpRetransSegs"); rs == nil || rs.Verdict != CounterNotCompared {
		t.Errorf("first read at its first event: %+v", rs)
	}
}

// A recording without namespace counters (older files) reports as before.
func TestNoNamespaceCounters(t *testing.T) {
	rec, rep := loadBuild(t, writeRec(t, "old.jsonl", recOpts{footer: true}, conns(2, 3)))
	if rep.NetnsCounters != nil {
		t.Errorf("counters from nowhere: %+v", rep.NetnsCounters)
	}
	var b bytes.Buffer
	if err := WriteText(&b, rec, rep); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "Namespace counters") {
		t.Errorf("a section for counters the file does not have:\n%s", b.String())
	}
}

// diff compares each counter per 1,000 segments the namespace sent, with
// the behaviour table's thresholds.
func TestNamespaceCountersDiff(t *testing.T) {
	segs := map[string]uint64{"fast": 40}
	a, _ := loadBuild(t, countersRec(t, "a.jsonl", session.Filters{}, segs,
		map[string]int64{"TcpRetransSegs": 100, "TcpOutSegs": 100_000, "TcpExtTCPTimeouts": 3}, "start"))
	b, _ := loadBuild(t, countersRec(t, "b.jsonl", session.Filters{}, segs,
		map[string]int64{"TcpRetransSegs": 300, "TcpOutSegs": 50_000, "TcpExtTCPTimeouts": 5}, "start"))
	d := Compare(a, b)
	if len(d.NetnsCounters) != 1 {
		t.Fatalf("namespace counter diffs: %+v", d.NetnsCounters)
	}
	nd := d.NetnsCounters[0]
	got := map[string]Metric{}
	for _, m := range nd.Metrics {
		got[m.Name] = m
	}
	rs := got["TcpRetransSegs"]
	if rs.Before == nil || *rs.Before != 1 || *rs.After != 6 || rs.Verdict != VerdictChanged || rs.ChangePct == nil || *rs.ChangePct != 500 {
		t.Errorf("TcpRetransSegs per 1,000 segments: %+v", rs)
	}
	if to := got["TcpExtTCPTimeouts"]; to.Verdict != VerdictTooFew {
		t.Errorf("3 and 5 timeouts: %+v", to)
	}
	if _, ok := got["TcpOutSegs"]; ok {
		t.Error("the traffic itself compared as a rate")
	}
	var buf bytes.Buffer
	if err := WriteDiffText(&buf, d); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"per 1,000 segments the namespace sent (its own TcpOutSegs, which leaves retransmissions out)", "TcpRetransSegs", "+500.0%", "too few to tell (3 and 5; need 20 on each side)"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("diff text lacks %q:\n%s", s, buf.String())
		}
	}
}
