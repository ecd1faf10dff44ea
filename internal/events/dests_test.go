package events

import (
	"net/netip"
	"testing"
)

// A reader that fell behind received some of a destination's resets and
// error reports: the destination gives the kernel's counts, with the
// events received kept beside them.
func TestDestsTotalsExceedEvents(t *testing.T) {
	web := netip.MustParseAddrPort("198.18.0.2:443")
	db := netip.MustParseAddrPort("198.18.0.3:5432")
	var ds Dests
	for _, e := range []Event{
		{Kind: KindReceiveReset, Dst: web},
		{Kind: KindErrorReport, Dst: web, Errno: ECONNRESET},
		{Kind: KindErrorReport, Dst: web, Errno: ECONNRESET},
		{Kind: KindSendError, Dst: web, Errno: EPIPE},
		{Kind: KindSendReset, Dst: db},
	} {
		ds.Observe(&e)
	}
	ds.ApplyTotals(&Totals{ByKey: map[TotalsKey]TotalsValue{
		{PID: 7, Kind: KindReceiveReset, Dst: web}:                   {Count: 40},
		{PID: 7, Kind: KindErrorReport, Dst: web, Errno: ECONNRESET}: {Count: 35},
		{PID: 8, Kind: KindErrorReport, Dst: web, Errno: ECONNRESET}: {Count: 5},
		{PID: 7, Kind: KindSendError, Dst: web, Errno: EPIPE}:        {Count: 900},
		{PID: 7, Kind: KindSendReset, Dst: db}:                       {Count: 1},
		{PID: 9, Kind: KindErrorReport, Dst: netip.AddrPort{}}:       {Count: 3},
		{PID: 7, Kind: KindRetransmit, Dst: db, Detail: "rto"}:       {Count: 2, Segs: 2},
	}})
	got := map[netip.AddrPort]*Dest{}
	for _, d := range ds.Sorted() {
		got[d.Dst] = d
	}
	w := got[web]
	if w == nil || !w.Exact {
		t.Fatalf("web: %+v, want the kernel's counts", w)
	}
	if want := (Failures{SendErrors: 900, ErrorReports: 40, ResetsRecv: 40}); w.Failures != want {
		t.Errorf("web counts %+v, want the totals' %+v", w.Failures, want)
	}
	if want := (Failures{SendErrors: 1, ErrorReports: 2, ResetsRecv: 1}); w.Received != want {
		t.Errorf("web received %+v, want the events' %+v", w.Received, want)
	}
	if w.SendErrno[EPIPE] != 900 || !w.Short() {
		t.Errorf("web errnos %v, short %v", w.SendErrno, w.Short())
	}
	d := got[db]
	if d == nil || d.ResetsSent != 1 || d.Received.ResetsSent != 1 || d.Short() || d.Retrans.Total() != 2 {
		t.Errorf("db: %+v, want 1 reset sent, as received, and 2 segments", d)
	}
	if u := got[netip.AddrPort{}]; u == nil || u.ErrorReports != 3 || u.Received.ErrorReports != 0 || !u.Exact {
		t.Errorf("unknown destination: %+v, want the kernel's 3 error reports and none received", u)
	}
	// Applying the totals again (a summary drawn twice) changes nothing.
	ds.ApplyTotals(&Totals{ByKey: map[TotalsKey]TotalsValue{{PID: 7, Kind: KindReceiveReset, Dst: web}: {Count: 40}}})
	if w.ResetsRecv != 40 || w.ErrorReports != 0 {
		t.Errorf("second totals: %+v", w.Failures)
	}
}

// Totals from a recording made before they were keyed by destination
// cannot be split per destination: the events' counts stay, not exact.
func TestDestsTotalsWithoutDestinations(t *testing.T) {
	web := netip.MustParseAddrPort("198.18.0.2:443")
	var ds Dests
	e := Event{Kind: KindErrorReport, Dst: web, Errno: ECONNRESET}
	ds.Observe(&e)
	ds.ApplyTotals(&Totals{ByKey: map[TotalsKey]TotalsValue{
		{PID: 7, Kind: KindErrorReport, Errno: ECONNRESET}: {Count: 9},
	}})
	d := ds.Sorted()
	if len(d) != 1 || d[0].Exact || d[0].ErrorReports != 1 || d[0].Received.ErrorReports != 1 {
		t.Errorf("got %+v, want the 1 error report received, not exact", d[0])
	}
}
