package metrics

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Pids far above pid_max: never alive, so only counts keep them fresh.
const firstPID = 4000000000

func sendFailures(t *testing.T, s *Sink) []string {
	t.Helper()
	return series(t, s, "sendtrace_send_failures_total")
}

func totalsOf(counts ...uint64) *events.Totals {
	tot := &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}}
	for i, n := range counts {
		tot.ByKey[events.TotalsKey{PID: firstPID + uint32(i), Kind: events.KindSendError, Errno: 104}] = events.TotalsValue{Count: n}
	}
	return tot
}

func unitNames(pid uint32) (*events.Workload, bool) {
	return (&events.Workload{Kind: events.WorkloadSystemd, Unit: fmt.Sprintf("u%d.service", pid-firstPID)}).Finish(), true
}

func TestWorkloadsBounded(t *testing.T) {
	tot := totalsOf(1, 2, 3, 4)
	s := New(Config{MaxWorkloads: 2, Names: unitNames, Poll: time.Hour})
	s.WatchTotals(pipeline.LiveTotals{Read: func() (*events.Totals, error) { return tot, nil }})
	defer s.End(&session.End{Totals: tot})
	series := sendFailures(t, s)
	var named, other int
	var sum float64
	for _, l := range series {
		var v float64
		fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
		sum += v
		if strings.Contains(l, "workload=other ") {
			other++
		} else if strings.Contains(l, "workload=systemd/u") {
			named++
		}
	}
	if named != 2 || other != 1 || sum != 10 {
		t.Errorf("with --max-workloads 2 and 4 workloads: %v; want 2 named, 1 other, 10 in all", series)
	}
}

// TestWorkloadsBoundEvicts: with the bound full, a new workload takes the
// place of the one that failed least recently, once that one has been
// quiet for EvictIdle; while every admitted workload failed within it, a
// new one is "other".
func TestWorkloadsBoundEvicts(t *testing.T) {
	tot := totalsOf(1, 1)
	s := New(Config{MaxWorkloads: 2, EvictIdle: 50 * time.Millisecond, Names: unitNames, Poll: time.Hour})
	s.WatchTotals(pipeline.LiveTotals{Read: func() (*events.Totals, error) { return tot, nil }})
	defer s.End(&session.End{Totals: tot})
	count := func(i int) {
		k := events.TotalsKey{PID: firstPID + uint32(i), Kind: events.KindSendError, Errno: 104}
		v := tot.ByKey[k]
		v.Count++
		tot.ByKey[k] = v
	}
	want := "errno=ECONNRESET,workload=systemd/u0.service 1; errno=ECONNRESET,workload=systemd/u1.service 1"
	if got := strings.Join(sendFailures(t, s), "; "); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	time.Sleep(60 * time.Millisecond)
	count(1) // u1 fails again; u0 has been quiet for EvictIdle
	count(2) // a new workload, u2, in the same read
	want = "errno=ECONNRESET,workload=systemd/u1.service 2; errno=ECONNRESET,workload=systemd/u2.service 1"
	if got := strings.Join(sendFailures(t, s), "; "); got != want {
		t.Errorf("a third workload, u0 quiet:\n got %s\nwant %s", got, want)
	}
	count(3) // u1 and u2 failed just now: no room
	want = "errno=ECONNRESET,workload=other 1; errno=ECONNRESET,workload=systemd/u1.service 2; errno=ECONNRESET,workload=systemd/u2.service 1"
	if got := strings.Join(sendFailures(t, s), "; "); got != want {
		t.Errorf("a fourth workload, none quiet:\n got %s\nwant %s", got, want)
	}
	if got := series(t, s, "sendtrace_workloads_evicted_total"); len(got) != 1 || got[0] != " 1" {
		t.Errorf("sendtrace_workloads_evicted_total: %q, want 1", got)
	}
}

func TestWorkloadsExpire(t *testing.T) {
	tot := totalsOf(1, 2)
	s := New(Config{SeriesTTL: 50 * time.Millisecond, Names: unitNames, Poll: time.Hour})
	s.WatchTotals(pipeline.LiveTotals{Read: func() (*events.Totals, error) { return tot, nil }})
	defer s.End(&session.End{Totals: tot})
	want := "errno=ECONNRESET,workload=systemd/u0.service 1; errno=ECONNRESET,workload=systemd/u1.service 2"
	if got := strings.Join(sendFailures(t, s), "; "); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	// u1 counts again within the TTL; u0 neither counts nor runs.
	for range 4 {
		time.Sleep(20 * time.Millisecond)
		v := tot.ByKey[events.TotalsKey{PID: firstPID + 1, Kind: events.KindSendError, Errno: 104}]
		v.Count++
		tot.ByKey[events.TotalsKey{PID: firstPID + 1, Kind: events.KindSendError, Errno: 104}] = v
		sendFailures(t, s)
	}
	want = "errno=ECONNRESET,workload=systemd/u1.service 6"
	if got := strings.Join(sendFailures(t, s), "; "); got != want {
		t.Fatalf("after u0's TTL:\n got %s\nwant %s", got, want)
	}
}

// TestExpiredWorkloadsForgotten: weeks of short-lived units, compressed.
// Once a unit's series expire, nothing of it is kept: not its counts,
// not its diagnoses.
func TestExpiredWorkloadsForgotten(t *testing.T) {
	const units = 1000
	counts := make([]uint64, units)
	for i := range counts {
		counts[i] = 1
	}
	tot := totalsOf(counts...)
	s := New(Config{SeriesTTL: 50 * time.Millisecond, Names: unitNames, Poll: time.Hour, MaxWorkloads: 2 * units})
	s.WatchTotals(pipeline.LiveTotals{Read: func() (*events.Totals, error) { return tot, nil }})
	defer s.End(&session.End{Totals: tot})
	for i := range units {
		if err := s.Diagnosis(&diagnose.Diagnosis{Rule: diagnose.RulePeerReset, PID: firstPID + uint32(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(series(t, s, "sendtrace_diagnoses_total")); got != units {
		t.Fatalf("%d diagnosis series, want %d", got, units)
	}
	time.Sleep(100 * time.Millisecond)
	if got := series(t, s, "sendtrace_diagnoses_total"); len(got) != 0 {
		t.Errorf("after the TTL, %d diagnosis series are still exported", len(got))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.diags) != 0 || len(s.seen) != 0 {
		t.Errorf("after every unit's series expired, the sink still keeps %d diagnosis counts and %d workloads", len(s.diags), len(s.seen))
	}
}

// series gathers one metric as "label=value,... count" lines.
func series(t *testing.T, s *Sink, name string) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out = append(out, fmt.Sprintf("%s %v", strings.Join(labels, ","), m.GetCounter().GetValue()+m.GetGauge().GetValue()))
		}
	}
	sort.Strings(out)
	return out
}

// Retransmits are exported in segments by kind (untraced ones have no
// event, so a count of 0), drops by reason, both summed over processes
// and destinations of a workload.
func TestRetransmitsAndDropsByKind(t *testing.T) {
	k := func(pid uint32, kind events.Kind, detail string, port uint16) events.TotalsKey {
		return events.TotalsKey{PID: firstPID + pid, Kind: kind, Detail: detail,
			Dst: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), port)}
	}
	tot := &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{
		k(0, events.KindRetransmit, "rto", 80):      {Count: 2, Segs: 47},
		k(0, events.KindRetransmit, "rto", 81):      {Count: 1, Segs: 1},
		k(0, events.KindRetransmit, "untraced", 80): {Segs: 3},
		k(1, events.KindRetransmit, "tlp", 80):      {Count: 1, Segs: 1},
		k(0, events.KindDrop, "NETFILTER_DROP", 80): {Count: 5, Segs: 9},
		k(0, events.KindRetransmit, "fast", 80):     {},
		k(1, events.KindDrop, "QDISC_DROP", 80):     {Count: 1, Segs: 1},
	}}
	s := New(Config{Names: unitNames, Poll: time.Hour})
	s.WatchTotals(pipeline.LiveTotals{Read: func() (*events.Totals, error) { return tot, nil }})
	defer s.End(&session.End{Totals: tot})
	got := strings.Join(series(t, s, "sendtrace_retransmitted_segments_total"), "\n")
	want := strings.Join([]string{
		"kind=rto,workload=systemd/u0.service 48",
		"kind=tlp,workload=systemd/u1.service 1",
		"kind=untraced,workload=systemd/u0.service 3",
	}, "\n")
	if got != want {
		t.Errorf("retransmitted segments:\n%s\nwant\n%s", got, want)
	}
	got = strings.Join(series(t, s, "sendtrace_drops_total"), "\n")
	want = strings.Join([]string{
		"reason=NETFILTER_DROP,workload=systemd/u0.service 5",
		"reason=QDISC_DROP,workload=systemd/u1.service 1",
	}, "\n")
	if got != want {
		t.Errorf("drops:\n%s\nwant\n%s", got, want)
	}
}

// TestAgentHealth: what makes a node's numbers inexact is exported, so an
// operator can alert on it: counts the kernel's map had no room for,
// failed reads of it, events lost by cause, and each layer's hook.
func TestAgentHealth(t *testing.T) {
	tot := totalsOf(1)
	tot.Uncounted, tot.LostKernel, tot.OwnersUnresolved = 3, 2, 1
	reads := 0
	s := New(Config{Names: unitNames, Poll: time.Hour})
	start := time.Unix(1700000000, 0)
	if err := s.Begin(&session.Description{StartTime: start, Hooks: session.Plan{
		{Layer: session.LayerSendReturn, Hook: "fexit/sock_sendmsg", Active: true},
		{Layer: session.LayerDrop, Why: "no candidate"},
		{Layer: session.LayerSyscallExit, Off: true, Why: "--no-syscall-layer"},
	}}); err != nil {
		t.Fatal(err)
	}
	s.WatchTotals(pipeline.LiveTotals{Read: func() (*events.Totals, error) {
		reads++
		if reads == 1 {
			return nil, fmt.Errorf("map lookup: EPERM")
		}
		return tot, nil
	}})
	// The first scrape's read fails: nothing is counted yet, and the
	// failure is.
	if got := strings.Join(series(t, s, "sendtrace_totals_read_errors_total"), "\n"); got != " 1" {
		t.Errorf("after a failed read, sendtrace_totals_read_errors_total: %q, want 1", got)
	}
	end := &session.End{Totals: &events.Totals{ByKey: tot.ByKey, Uncounted: 3, LostKernel: 2, LostUser: 4, OwnersUnresolved: 1}}
	for name, want := range map[string]string{
		"sendtrace_totals_read_errors_total": " 1",
		"sendtrace_uncounted_total":          " 3",
		"sendtrace_owners_unresolved_total":  " 1",
		"sendtrace_events_lost_total":        "cause=reader 0\ncause=ring_full 2",
		"sendtrace_layer_degraded":           "hook=degraded,layer=drop 1\nhook=fexit/sock_sendmsg,layer=send-return 0\nhook=off,layer=syscall-exit 0",
		"sendtrace_start_time_seconds":       " 1.7e+09",
	} {
		if got := strings.Join(series(t, s, name), "\n"); got != want {
			t.Errorf("%s:\n%s\nwant\n%s", name, got, want)
		}
	}
	if err := s.End(end); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(series(t, s, "sendtrace_events_lost_total"), "\n"), "cause=reader 4\ncause=ring_full 2"; got != want {
		t.Errorf("once the session ends, sendtrace_events_lost_total:\n%s\nwant\n%s", got, want)
	}
}
