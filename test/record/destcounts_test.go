package record_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestRecordDestinationCountsStayExact records a storm of ICMP port
// unreachables (a connected UDP socket sending to a port nobody listens
// on, the ICMP rate limit off) while the recorder is stopped, so that
// its 1 MiB ring buffer fills and error reports are lost. record's exit summary, report's text and
// report's JSON must all give the destination's error reports as the
// kernel counted them (the footer's totals, and nstat's
// IcmpInDestUnreachs in the client's namespace), with the events in the
// file beside them.
func TestRecordDestinationCountsStayExact(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 2*time.Minute)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	lab.Server.MustSetSysctl("net.ipv4.icmp_ratemask", "0")
	lab.Server.MustSetSysctl("net.ipv4.icmp_ratelimit", "0")
	// -hold: the ICMP errors for the last datagrams find the socket open.
	cl := lab.Client.StartActor(t, actorBin, "client", "-proto", "udp", "-to", dst.String(), "-count", "50000", "-size", "10", "-hold", "1s")
	if _, err := cl.WaitPhase(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "refused.jsonl.zst")
	rec := startRecorder(t, ctx, path, []*netlab.Actor{cl}, "--ring-mib", "1")
	// A reader descheduled through a burst: the kernel keeps counting.
	if err := rec.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := cl.Release("start"); err != nil {
		t.Fatal(err)
	}
	r, err := cl.Wait(ctx)
	if err != nil || r.Error != "" || len(r.Sockets) != 1 {
		t.Fatalf("client: %v %+v", err, r)
	}
	refused := uint64(len(r.Sockets[0].Failed()))
	if err := rec.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, ctx)
	icmp := uint64(lab.Client.MustSNMP()["IcmpInDestUnreachs"])

	rep := reportJSON(t, path)
	kernel := rep.ByKind["error_report"]
	if len(rep.Destinations) != 1 || rep.Lost == nil {
		t.Fatalf("report: destinations %+v, lost %v", rep.Destinations, rep.Lost)
	}
	d := rep.Destinations[0]
	t.Logf("error reports: footer %d, nstat IcmpInDestUnreachs %d, report %d, received %+v; lost %+v", kernel, icmp, d.ErrorReports, d.Received, *rep.Lost)
	if kernel != icmp || kernel < 1000 {
		t.Fatalf("lab: the footer counts %d error reports, nstat %d ICMP unreachables", kernel, icmp)
	}
	if d.Received == nil || d.Received.ErrorReports >= kernel {
		t.Fatalf("report received %+v of %d error reports: none were lost, so the test proves nothing", d.Received, kernel)
	}
	if d.Dst != dst.String() || d.ErrorReports != kernel || !d.CountsExact {
		t.Errorf("report's destination %+v, want %s with the kernel's %d error reports", d, dst, kernel)
	}
	if d.SendErrors != refused || d.Errnos["ECONNREFUSED"] != refused || d.Received.SendErrors >= refused {
		t.Errorf("report's destination has %d send errors (%v, %d received); the client's sends failed %d times",
			d.SendErrors, d.Errnos, d.Received.SendErrors, refused)
	}
	if len(rep.Processes) != 1 || rep.Processes[0].SendErrors != refused || rep.Processes[0].ErrorReports != kernel || rep.Processes[0].Received == nil {
		t.Errorf("report's processes %+v, want the client with %d send errors and %d error reports, and fewer received", rep.Processes, refused, kernel)
	}
	cell := fmt.Sprintf("%d (%d received)", kernel, d.Received.ErrorReports)

	row := summaryRow(rec.stdout.String(), "Retransmits, resets and error reports by destination", dst.String())
	if row == nil || row[7] != cell {
		t.Errorf("record's exit summary: destination row %q, want error reports %q:\n%s", row, cell, &rec.stdout)
	}
	text := sendtrace(t, "report", path)
	if !strings.Contains(text, "Top failing destinations (send errors, error reports and resets: kernel's totals, exact") {
		t.Errorf("report's destinations table does not say its counts are the kernel's:\n%s", text)
	}
	_, top, _ := strings.Cut(text, "\nTop failing destinations")
	if line := lineOf(top, dst.String()); !strings.Contains(line, cell) {
		t.Errorf("report's destination line %q, want error reports %q", line, cell)
	}
	if row := summaryRow(text, "Retransmits, resets and error reports by destination", dst.String()); row == nil || row[7] != cell {
		t.Errorf("report's summary: destination row %q, want error reports %q", row, cell)
	}
}

// summaryRow returns the cells of the summary table's row whose first
// cell is first.
func summaryRow(summary, title, first string) []string {
	for _, cells := range testutil.TableRows(summary, title) {
		if cells[0] == first {
			return cells
		}
	}
	return nil
}

// lineOf returns the first line of text that starts with prefix.
func lineOf(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
