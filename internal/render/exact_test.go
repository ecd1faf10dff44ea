package render

import (
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
	tot.ByKey[events.TotalsKey{PID: 4242, Kind: events.KindSendError, Errno: ecomm}] = events.TotalsValue{Count: 5, Bytes: 7240}
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
