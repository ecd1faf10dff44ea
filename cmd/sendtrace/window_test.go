package main

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

// TestWindowQuery: report's window flags cross to an agent as query
// parameters and come back as the same window and filter, and a bad
// parameter is one line saying what to give.
func TestWindowQuery(t *testing.T) {
	now := time.Date(2026, 12, 6, 20, 30, 0, 0, time.UTC)
	sent := windowFlags{since: "2026-12-06T20:00:00Z", until: "5m", pids: []string{"7", "8"}, ports: []string{"80"},
		dsts: []string{"198.18.0.0/15"}, units: []string{"nginx"}, pods: []string{"shop/cart"}, containers: []string{"ABCD"}, comms: []string{"curl"}}
	q, err := url.ParseQuery(sent.query().Encode())
	if err != nil {
		t.Fatal(err)
	}
	wf, err := windowFromQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	since, until, err := wf.window(now)
	if err != nil || !since.Equal(now.Add(-30*time.Minute)) || !until.Equal(now.Add(-5*time.Minute)) {
		t.Errorf("window %s to %s, %v; want 20:00 to 20:25", since, until, err)
	}
	f, err := wf.filter()
	if err != nil {
		t.Fatal(err)
	}
	w := &events.Workload{ID: "abcdef01", Namespace: "shop", Pod: "cart", Unit: "nginx.service"}
	in := &events.Event{PID: 8, Comm: "curl", Dst: netip.MustParseAddrPort("198.18.1.2:80"), Workload: w}
	if !f.Match(in) {
		t.Errorf("filter %+v refuses %+v", f, in)
	}
	out := *in
	out.PID = 9
	if f.Match(&out) {
		t.Errorf("filter %+v keeps pid 9", f)
	}
	wf, err = windowFromQuery(url.Values{"since": {"1m"}, "pid": {"7,8", "9"}})
	if err != nil || len(wf.pids) != 3 {
		t.Errorf("pid=7,8&pid=9: %v %v, want three pids", wf, err)
	}
	for _, c := range []struct {
		q    url.Values
		want string
	}{
		{url.Values{"since": {"5m"}, "pids": {"1"}}, `unknown parameter "pids": give since, until and the filters pid, comm, dst, port, container, pod, unit`},
		{url.Values{"since": {"5m", "6m"}}, "since is given 2 times: give it once"},
		{url.Values{}, "missing --since"},
		{url.Values{"since": {"yesterday"}}, `invalid --since "yesterday"`},
		{url.Values{"since": {"5m"}, "until": {"10m"}}, "is before --since"},
		{url.Values{"since": {"5m"}, "pid": {"0"}}, `invalid --pid "0"`},
		{url.Values{"since": {"5m"}, "port": {"70000"}}, `invalid --port "70000": give a port from 1 to 65535`},
		{url.Values{"since": {"5m"}, "dst": {"10.0.0.300"}}, `invalid --dst "10.0.0.300"`},
		{url.Values{"since": {"5m"}, "pod": {"cart"}}, `invalid --pod "cart": give NAMESPACE/NAME`},
	} {
		wf, err := windowFromQuery(c.q)
		if err == nil {
			_, _, err = wf.window(now)
		}
		if err == nil {
			_, err = wf.filter()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v; want one line containing %q", c.q, err, c.want)
		}
	}
}
