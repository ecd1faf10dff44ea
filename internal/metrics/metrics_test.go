package metrics

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Pids far above pid_max: never alive, so only counts keep them fresh.
const firstPID = 4000000000

func sendFailures(t *testing.T, s *Sink) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "sendtrace_send_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out = append(out, fmt.Sprintf("%s %v", strings.Join(labels, ","), m.GetCounter().GetValue()))
		}
	}
	sort.Strings(out)
	return out
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
	s.WatchTotals(func() (*events.Totals, error) { return tot, nil })
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

func TestWorkloadsExpire(t *testing.T) {
	tot := totalsOf(1, 2)
	s := New(Config{SeriesTTL: 50 * time.Millisecond, Names: unitNames, Poll: time.Hour})
	s.WatchTotals(func() (*events.Totals, error) { return tot, nil })
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
