package report

import (
	"net/netip"
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"
)

// A recording made before sendtrace left out the error report that a
// failed connect() makes when it resets its socket (errno 0, src
// 0.0.0.0:PORT, dst ADDR:0), its footer counting them too: report counts
// one error report per refused connect, under the destination connected
// to, and no destination ADDR:0.
func TestOlderRecordingDisconnectReports(t *testing.T) {
	const n = 50
	dst := netip.MustParseAddrPort("198.18.2.2:9000")
	var evs []events.Event
	for i := range n {
		base := events.Event{PID: 7, TID: 7, Comm: "app", OwnerKnown: true, Cookie: uint64(100 + i), Family: 2, Protocol: 6,
			Src: netip.MustParseAddrPort("198.18.2.1:40000"), Dst: dst, SinceSend: -1, SinceRecv: -1}
		mono := 1001*sec + uint64(i)*sec/100
		syn := base
		syn.Kind, syn.Mono, syn.State, syn.OldState = events.KindStateChange, mono, events.StateSynSent, events.StateClose
		rst := base
		rst.Kind, rst.Mono, rst.State = events.KindReceiveReset, mono+1000, events.StateSynSent
		refused := base
		refused.Kind, refused.Mono, refused.State, refused.Errno = events.KindErrorReport, mono+2000, events.StateClose, events.ECONNREFUSED
		reset := base
		reset.Kind, reset.Mono, reset.State = events.KindErrorReport, mono+3000, events.StateClose
		reset.Src, reset.Dst = netip.MustParseAddrPort("0.0.0.0:40000"), netip.AddrPortFrom(dst.Addr(), 0)
		evs = append(evs, syn, rst, refused, reset)
	}
	rec, err := Load(writeRec(t, "old.jsonl", recOpts{footer: true}, evs), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(rec, BuildOptions{})
	if got := rec.Count(events.KindErrorReport); got != n {
		t.Errorf("%d error reports counted, want %d", got, n)
	}
	for _, d := range rep.Destinations {
		if d.Dst != dst.String() || d.ErrorReports != n {
			t.Errorf("destination %s with %d error reports; want only %s with %d", d.Dst, d.ErrorReports, dst, n)
		}
	}
	if len(rep.Processes) != 1 || rep.Processes[0].ErrorReports != n {
		t.Errorf("processes %+v, want app with %d error reports", rep.Processes, n)
	}
	for _, c := range rep.FailedConns {
		if c.Errno != "ECONNREFUSED" {
			t.Errorf("connection %d failed with %q, want ECONNREFUSED", c.Cookie, c.Errno)
		}
	}
}
