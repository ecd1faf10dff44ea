package render

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"
)

// A reader that fell behind received 2 of the 5 ECOMM failures the
// kernel counted: the failed-sends table gives the kernel's 5 and shows
// the 2 received beside it.
func TestSummaryCountsAreTheKernels(t *testing.T) {
	s := NewSummary()
	run := sampleRun()
	observeAll(s, run...)
	tot := sampleTotals()
	tot.ByKey[events.TotalsKey{PID: 4242, Kind: events.KindSendError, Errno: ecomm, Dst: netip.MustParseAddrPort(webDst)}] = events.TotalsValue{Count: 5, Bytes: 7240}
	tot.LostKernel = 3
	out := render(t, s, tot)
	rowsEqual(t, "failed sends", tableRows(out, "Failed sends by errno"), [][]string{
		{commStr, "curl/4242", "5", "7240", "2", webDst + " (2)"},
		{events.ErrnoString(epipe), "postgres/901", "1", "0", "1", dbDst + " (1)"},
		{events.ErrnoString(ereset), "curl/4242", "1", "65536", "1", webDst + " (1)"},
	})
	if !strings.Contains(out, "Failed sends by errno and process (kernel counted 7, exact; 4 received)") {
		t.Errorf("failed sends title does not give the kernel's count first:\n%s", out)
	}
}

func errorReport(cookie uint64, errno int32, dst string) events.Event {
	e := resetRecv(dst)
	e.Kind, e.Cookie, e.Errno, e.State = events.KindErrorReport, cookie, errno, events.StateClose
	return e
}

// The application's receive failed (a reset, a timeout) and no send
// failed: the summary opens with the connections that failed.
func TestSummaryNoFailedSendsButFailedConnections(t *testing.T) {
	s := NewSummary()
	rst := resetRecv(webDst)
	rst.Cookie = 1
	etimedout := events.ETIMEDOUT
	observeAll(s, retransmit(dbDst), errorReport(2, etimedout, dbDst), rst, errorReport(1, ereset, webDst))
	out := render(t, s, &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{
		{PID: 4242, Kind: events.KindRetransmit}:                    {Count: 1, Bytes: 1448},
		{PID: 4242, Kind: events.KindReceiveReset}:                  {Count: 1},
		{PID: 4242, Kind: events.KindErrorReport, Errno: etimedout}: {Count: 1},
		{PID: 4242, Kind: events.KindErrorReport, Errno: ereset}:    {Count: 1},
	}})
	first, _, _ := strings.Cut(out, "\n")
	if want := "no send failed, but 2 connections failed: 1 ECONNRESET, 1 ETIMEDOUT"; !strings.HasPrefix(first, want) {
		t.Errorf("first line %q, want it to start %q:\n%s", first, want, out)
	}
	rowsEqual(t, "failed connections", tableRows(out, "Failed connections by errno"), [][]string{
		{events.ErrnoString(ereset), "reset received", webDst, "curl/4242", "1"},
		{events.ErrnoString(etimedout), "error report", dbDst, "curl/4242", "1"},
	})
}

// A reader that fell behind received 1 of the 40 resets and 2 of the 30
// error reports the kernel counted for a destination: the destinations
// table gives the kernel's counts, the received beside them, and says so.
func TestSummaryDestinationCountsAreTheKernels(t *testing.T) {
	run := []events.Event{resetRecv(webDst), errorReport(1, ereset, webDst), errorReport(2, ereset, webDst), resetRecv(dbDst)}
	s := NewSummary()
	observeAll(s, run...)
	web, db := netip.MustParseAddrPort(webDst), netip.MustParseAddrPort(dbDst)
	tot := &events.Totals{LostKernel: 67, ByKey: map[events.TotalsKey]events.TotalsValue{
		{PID: 4242, Kind: events.KindReceiveReset, Dst: web}:               {Count: 40},
		{PID: 4242, Kind: events.KindErrorReport, Errno: ereset, Dst: web}: {Count: 30},
		{PID: 4242, Kind: events.KindReceiveReset, Dst: db}:                {Count: 1},
		{PID: 4242, Kind: events.KindSendReset, Dst: db}:                   {Count: 2},
		{PID: 4242, Kind: events.KindSendError, Errno: epipe, Dst: db}:     {Count: 9},
	}}
	out := render(t, s, tot)
	rowsEqual(t, "destinations", tableRows(out, "Retransmits, resets and error reports by destination"), [][]string{
		{webDst, "0", "-", "0", "0", "40 (1 received)", "0", "30 (2 received)"},
		{dbDst, "0", "-", "0", "0", "1", "2 (0 received)", "0"},
	})
	if !strings.Contains(out, "by destination (kernel's totals, exact, events received in brackets where fewer arrived;") {
		t.Errorf("destinations title does not say its counts are the kernel's:\n%s", out)
	}
	// Without the totals (a recording cut short) the counts are the
	// events', and the title says so.
	s = NewSummary()
	observeAll(s, run...)
	out = render(t, s, nil)
	rowsEqual(t, "destinations without totals", tableRows(out, "Retransmits, resets and error reports by destination"), [][]string{
		{webDst, "0", "-", "0", "0", "1", "0", "2"},
		{dbDst, "0", "-", "0", "0", "1", "0", "0"},
	})
	if !strings.Contains(out, "by destination (from the events received)") {
		t.Errorf("destinations title without totals:\n%s", out)
	}
}
