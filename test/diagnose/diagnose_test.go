package diagnose_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
)

// idleLab is client — middlebox — server with a request/response server.
func idleLab(t *testing.T, reset bool) (*netlab.Routed, string) {
	lab := netlab.NewRouted(t, netlab.LinkOpts{}, netlab.LinkOpts{})
	lab.ApplyMiddlebox(t, netlab.Middlebox{Idle: 2 * time.Second, Reset: reset})
	return lab, lab.ServerAddr(false, port).String()
}

// 1: a pooled connection idles past the middlebox's timeout; its next
// request is answered with a reset.
func TestIdleReset(t *testing.T) {
	ctx := scenario(t)
	lab, dst := idleLab(t, true)
	startPeerServer(t, ctx, lab.Server, "-listen", dst)
	cl := startPeerClient(t, lab.Client, "-to", dst, "-mode", "idle", "-idle", "3500ms", "-count", "10")
	tr := startTracer(t, ctx, cl.pidArg())
	r := cl.run(t, ctx)
	_, ds := tr.stop(t)
	if len(r.Errnos) == 0 {
		t.Fatalf("lab: the client saw no failure after the idle: %+v", r)
	}
	d := want(t, ds, "idle-reset", r.Cookies...)[0]
	if d.Evidence.Idle < 3*time.Second {
		t.Errorf("idle %v, the client was silent for 3.5s", d.Evidence.Idle)
	}
	if n := len(ds); n != 1 {
		t.Errorf("%d diagnoses (%s) for one failure", n, rulesOf(ds))
	}
}

// 1, silent form: the middlebox drops the forgotten flow's packets.
func TestIdleDrop(t *testing.T) {
	ctx := scenario(t)
	lab, dst := idleLab(t, false)
	lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", "3")
	startPeerServer(t, ctx, lab.Server, "-listen", dst)
	cl := startPeerClient(t, lab.Client, "-to", dst, "-mode", "idle", "-idle", "3500ms", "-count", "60")
	tr := startTracer(t, ctx, cl.pidArg())
	r := cl.run(t, ctx)
	_, ds := tr.stop(t)
	// The client's non-blocking drain may consume the ETIMEDOUT itself;
	// its next send then gets EPIPE.
	if len(r.Errnos) == 0 {
		t.Fatalf("lab: the client saw no failure after the idle: %+v", r)
	}
	want(t, ds, "idle-reset", r.Cookies...)
}

// 1, negative: keepalive shorter than the middlebox timeout keeps the flow.
func TestIdleKeepalive(t *testing.T) {
	ctx := scenario(t)
	lab, dst := idleLab(t, true)
	startPeerServer(t, ctx, lab.Server, "-listen", dst)
	cl := startPeerClient(t, lab.Client, "-to", dst, "-mode", "idle", "-idle", "3500ms", "-count", "5", "-keepalive", "1s")
	tr := startTracer(t, ctx, cl.pidArg())
	r := cl.run(t, ctx)
	_, ds := tr.stop(t)
	if len(r.Errnos) != 0 || r.Error != "" {
		t.Fatalf("lab: keepalive did not keep the flow: %+v", r)
	}
	if len(ds) != 0 {
		t.Errorf("diagnoses without a failure: %s", rulesOf(ds))
	}
}

// 3: a 1280-byte hop whose ICMP frag-needed is dropped; the server keeps
// sending small heartbeats, which get through.
func TestPMTUBlackHole(t *testing.T) {
	ctx := scenario(t)
	lab := netlab.NewRouted(t, netlab.LinkOpts{}, netlab.LinkOpts{})
	lab.ApplyPMTUBlackHole(t, 1280)
	lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", "3")
	dst := lab.ServerAddr(false, port).String()
	startPeerServer(t, ctx, lab.Server, "-listen", dst, "-tick", "100ms")
	cl := startPeerClient(t, lab.Client, "-to", dst, "-mode", "pmtu", "-count", "80")
	tr := startTracer(t, ctx, cl.pidArg())
	r := cl.run(t, ctx)
	_, ds := tr.stop(t)
	if !slices.Contains(r.Errnos, "ETIMEDOUT") {
		t.Fatalf("lab: the client saw %v, want ETIMEDOUT", r.Errnos)
	}
	d := want(t, ds, "pmtu-black-hole", r.Cookies...)[0]
	if d.Evidence.SegmentBytes+40 <= 1280 {
		t.Errorf("stuck segment of %d bytes would fit the 1280-byte hop", d.Evidence.SegmentBytes)
	}
}

// 2: the server namespace drops the client's segments once connected.
func TestBlackHole(t *testing.T) {
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	r, _, ds, _ := stalledClient(t, lab.Client, lab.Server, dst.String(), 100, 0, func() {
		lab.Server.MustNft(fmt.Sprintf(`table inet lab {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr %s tcp dport %d drop
	}
}`, lab.ClientAddr(false), port))
	})
	d := want(t, ds, "black-hole", r.Sockets[0].Cookie)[0]
	if d.Evidence.SameSeq < 2 || d.Evidence.Setting == "" {
		t.Errorf("evidence lacks the retransmit chain or the timeout setting: %+v", d.Evidence)
	}
	if !strings.HasPrefix(d.Evidence.Setting, "net.ipv4.tcp_retries2=3 ") {
		t.Errorf("setting %q, the client namespace has tcp_retries2=3", d.Evidence.Setting)
	}
}

// tracedActors runs an actor server and a traced actor client on a fresh
// pair, and returns the client's report and the diagnoses sendtrace made.
func tracedActors(t *testing.T, server []string, client ...string) (*actorreport.Report, []diagnose.Diagnosis) {
	t.Helper()
	ctx := scenario(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port).String()
	srv := lab.Server.StartActor(t, actorBin, append([]string{"server", "-listen", dst}, server...)...)
	if _, err := srv.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	cl := lab.Client.StartActor(t, actorBin, append([]string{"client", "-to", dst}, client...)...)
	if _, err := cl.WaitPhase(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	tr := startTracer(t, ctx, "--pid="+strconv.Itoa(cl.PID()))
	if err := cl.Release("start"); err != nil {
		t.Fatal(err)
	}
	r, err := cl.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, ds := tr.stop(t)
	return r, ds
}

// 4: a non-blocking sender whose peer never reads. Its first EAGAIN
// comes while the peer's window is still open (not yet a stuck reader);
// it goes on until the window is zero.
func TestBackpressure(t *testing.T) {
	r, ds := tracedActors(t, []string{"-mode", "sink", "-rcvbuf", "65536"},
		"-nonblock", "-sndbuf", "65536", "-count", "150", "-interval", "20ms", "-size", "16384")
	d := want(t, ds, "backpressure", r.Sockets[0].Cookie)[0]
	if d.Confidence != "high" || d.Evidence.SndWnd != 0 {
		t.Errorf("want the zero window at high confidence: %+v", d)
	}
}

// 7: seccomp makes sendto fail with ECOMM before the socket layer.
func TestSeccompECOMM(t *testing.T) {
	r, ds := tracedActors(t, []string{"-mode", "discard"}, "-seccomp-ecomm", "-count", "1", "-size", "512")
	d := want(t, ds, "outside-stack", r.Sockets[0].Cookie)[0]
	if d.Errno != 70 || d.Evidence.Syscall != "sendto" {
		t.Errorf("want ECOMM from sendto: %+v", d)
	}
}

// 5: nothing listens on the port; the SYN is answered with a reset.
func TestRefused(t *testing.T) {
	ctx := scenario(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port).String()
	cl := startPeerClient(t, lab.Client, "-to", dst, "-mode", "storm", "-count", "1")
	tr := startTracer(t, ctx, cl.pidArg())
	r := cl.run(t, ctx)
	_, ds := tr.stop(t)
	if fmt.Sprint(r.Errnos) != "[ECONNREFUSED]" {
		t.Fatalf("lab: the client saw %v", r.Errnos)
	}
	want(t, ds, "refused-unreachable", r.Cookies...)
	if len(ds) != 1 {
		t.Errorf("%d diagnoses (%s) for one refused connect", len(ds), rulesOf(ds))
	}
}

// 6: the application shuts down its side, then writes.
func TestLocalShutdown(t *testing.T) {
	ctx := scenario(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port).String()
	startPeerServer(t, ctx, lab.Server, "-listen", dst)
	cl := startPeerClient(t, lab.Client, "-to", dst, "-mode", "shutdown")
	tr := startTracer(t, ctx, cl.pidArg())
	r := cl.run(t, ctx)
	_, ds := tr.stop(t)
	if fmt.Sprint(r.Errnos) != "[EPIPE]" {
		t.Fatalf("lab: the client saw %v", r.Errnos)
	}
	want(t, ds, "local-shutdown", r.Cookies...)
}

// 8: a client reconnecting at once after every refusal.
func TestRetryStorm(t *testing.T) {
	ctx := scenario(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port).String()
	cl := startPeerClient(t, lab.Client, "-to", dst, "-mode", "storm", "-count", "20", "-interval", "20ms")
	tr := startTracer(t, ctx, cl.pidArg())
	r := cl.run(t, ctx)
	_, ds := tr.stop(t)
	if len(r.Errnos) != 20 {
		t.Fatalf("lab: %d refused connects, want 20", len(r.Errnos))
	}
	storms := want(t, ds, "retry-storm")
	if len(storms) != 1 {
		t.Errorf("%d retry-storm diagnoses for one storm", len(storms))
	}
	// The storm's evidence counts every connection the client opened,
	// not the few that first crossed the threshold.
	if d := storms[0]; d.Evidence.Rate < 5 || d.Evidence.Connections != 20 || d.Evidence.Failures != 20 {
		t.Errorf("storm evidence %+v, want the client's 20 connections, all refused", d.Evidence)
	}
}

// Negative: a healthy bulk transfer over a path that drops 2% of the data
// packets retransmits, but neither fails nor is called a black hole.
func TestHealthyBulkWithDrops(t *testing.T) {
	ctx := scenario(t)
	lab := netlab.NewRouted(t, netlab.LinkOpts{}, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	lab.Router.MustNft(fmt.Sprintf(`table inet lossy {
	chain forward_filter {
		type filter hook forward priority 0; policy accept;
		ip daddr %s tcp dport %d meta length > 1000 numgen random mod 100 < 2 drop
	}
}`, dst.Addr(), port))
	startPeerServer(t, ctx, lab.Server, "-listen", dst.String())
	cl := startPeerClient(t, lab.Client, "-to", dst.String(), "-mode", "bulk", "-bulk", "20000000")
	tr := startTracer(t, ctx, cl.pidArg())
	r := cl.run(t, ctx)
	evs, ds := tr.stop(t)
	if len(r.Errnos) != 0 || r.Error != "" {
		t.Fatalf("lab: the transfer failed: %+v", r)
	}
	n := 0
	for _, e := range evs {
		if e.Kind.String() == "retransmit" {
			n++
		}
	}
	t.Logf("%d retransmits", n)
	if n == 0 {
		t.Errorf("no retransmits: the lossy path dropped nothing")
	}
	if len(ds) != 0 {
		t.Errorf("healthy transfer diagnosed: %s", rulesOf(ds))
	}
}
