package fleet_test

import (
	"fmt"
	"testing"

	"github.com/sendtrace/sendtrace/internal/netlab"
)

// TestServeRetransmits has a connected client's data vanish in a black hole
// (the server's namespace drops it) until tcp_retries2 gives up, has a real
// Prometheus scrape `sendtrace serve`, and checks that the retransmitted
// segments it reports for the client's workload, summed over kinds, equal
// the growth of TcpRetransSegs in the client's namespace, and that the
// timer's (rto) are among them; and that serve diagnosed the failure.
func TestServeRetransmits(t *testing.T) {
	ctx := fleetContext(t)
	const port = 8080
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	srvActor := lab.Server.StartActor(t, actorBin, "server", "-mode", "discard", "-listen", dst.String())
	if _, err := srvActor.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", "3")
	unit := "sendtrace-rtx-" + randomHex(t, 8) + ".service"
	unitDir, _ := makeCgroup(t, "system.slice/"+unit)

	srv := startServe(t, ctx, "--events=false", "--dst="+lab.Link.V4Net.String())
	prom := startPrometheus(t, ctx, srv.addr)

	cl := lab.Client.StartActor(t, actorBin, "client", "-to", dst.String(), "-pause-connected",
		"-until-error", "-count", "0", "-interval", "100ms", "-size", "100")
	if _, err := cl.WaitPhase(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	moveInto(t, unitDir, cl.PID())
	if err := cl.Release("start"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.WaitPhase(ctx, "connected"); err != nil {
		t.Fatal(err)
	}
	lab.Server.MustNft(fmt.Sprintf(`table inet lab {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr %s tcp dport %d drop
	}
}`, lab.ClientAddr(false), port))
	before := lab.Client.MustSNMP()
	if err := cl.Release("connected"); err != nil {
		t.Fatal(err)
	}
	failed := failedSends(t, ctx, cl)
	after := lab.Client.MustSNMP()
	if len(failed) != 1 || failed[0].ErrnoName != "ETIMEDOUT" {
		t.Fatalf("lab: the client saw %v, want one ETIMEDOUT", failed)
	}
	segs := netlab.Delta(before, after, "TcpRetransSegs")
	if segs <= 0 {
		t.Fatalf("lab: TcpRetransSegs grew by %d in the client's namespace", segs)
	}
	t.Logf("client namespace: TcpRetransSegs +%d, TCPTimeouts +%d, TCPLossProbes +%d", segs,
		netlab.Delta(before, after, "TcpExtTCPTimeouts"), netlab.Delta(before, after, "TcpExtTCPLossProbes"))

	label := "systemd/" + unit
	prom.waitQuery(t, ctx, fmt.Sprintf(`sum(sendtrace_retransmitted_segments_total{workload=%q})`, label), float64(segs))
	rto, ok, err := prom.query(ctx, fmt.Sprintf(`sendtrace_retransmitted_segments_total{workload=%q,kind="rto"}`, label))
	if err != nil || !ok || rto <= 0 {
		t.Errorf("prometheus: rto segments of %s: %v (present %v, %v), want some", label, rto, ok, err)
	}
	t.Logf("prometheus: rto segments %v of %d", rto, segs)
	// serve runs the diagnosis engine it is handed: the one failed
	// connection is one diagnosis of the client's workload, whichever
	// rule names it.
	prom.waitQuery(t, ctx, fmt.Sprintf(`sum(sendtrace_diagnoses_total{workload=%q})`, label), 1)
	rules, err := prom.queryAll(ctx, fmt.Sprintf(`sendtrace_diagnoses_total{workload=%q}`, label))
	t.Logf("prometheus: diagnoses of %s: %v %v", label, rules, err)
	_, stderr := srv.Stop(t, tracerStop)
	t.Logf("sendtrace serve stderr:\n%s", stderr)
}
