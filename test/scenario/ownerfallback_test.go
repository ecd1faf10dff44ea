package scenario_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
	"github.com/sendtrace/sendtrace/internal/testutil/timescale"
)

// noSeeding switches the owner-seeding iterator off, as a kernel whose
// verifier refuses it would: connections older than the session have no
// owner in the kernel, and only the /proc lookup can attribute them.
const noSeeding = "--disable-hook=iter/task_file"

// checkViaProc checks that the first asynchronous event of the socket was
// attributed through /proc, that the exit summary counts such events, and
// that the start-up line says what the degraded layer costs.
func checkViaProc(t *testing.T, tr *Tracer, evs []*Event, r *actorreport.Report, kind string) {
	t.Helper()
	async := OfKind(evs, kind, r.Sockets[0].Cookie)
	if len(async) == 0 {
		t.Fatalf("no %s event for the connection that existed before the session", kind)
	}
	if async[0].OwnerVia != "proc" {
		t.Errorf("the first %s (%s) says owner_via %q, want \"proc\"", kind, async[0], async[0].OwnerVia)
	}
	for _, e := range evs {
		if e.Kind != "send_error" && e.OwnerVia != "proc" {
			t.Errorf("%s: an async event of a socket the kernel could not attribute says owner_via %q", e, e.OwnerVia)
		}
	}
	if !strings.Contains(tr.Stderr, "events attributed by /proc lookup") {
		t.Errorf("the exit summary does not count the events attributed by /proc lookup")
	}
	if !strings.Contains(tr.Stderr, "layer owner-seed is degraded") {
		t.Errorf("the start-up lines do not say that owner-seed is degraded")
	}
}

// A connection black-holed after it was made, traced with --pid and no
// seeding: its retransmits and error report are attributed through /proc,
// and the retransmitted segments still equal the kernel's counter.
func TestOwnerByProcStalled(t *testing.T) {
	ctx := scenarioContext(t)
	sp := newStalledPath(t, ctx, 1)
	sp.connect(t, ctx)
	tr := StartTracer(t, ctx, pidArg(sp.clients[0]), noSeeding)
	reps, mib := sp.stall(t, ctx, "drop")
	evs := tr.Stop(t)
	checkOnly(t, evs, reps[0])
	n := checkStalled(t, evs, reps[0], unix.ETIMEDOUT)
	checkRetransSegs(t, tr, n, mib)
	checkViaProc(t, tr, evs, reps[0], "retransmit")
}

// A peer that resets a connection made before the session, traced with
// --pid and no seeding: the reset received and the error report reach the
// stream, attributed through /proc; another process's connection to the
// same server, reset the same way, does not.
func TestOwnerByProcPeerReset(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	// The reset comes seconds after the connection, once sendtrace runs
	// (which takes seconds in an emulated guest).
	startServer(t, ctx, lab.Server, "reset", dst, "-reset-after", timescale.Scale(4*time.Second).String())
	var cls []*netlab.Actor
	for range 2 {
		cl := startClient(t, ctx, lab.Client, "-to", dst.String(), "-pause-connected", "-await-error-before", "1", "-count", "2", "-size", "1000")
		release(t, cl, "start")
		if _, err := cl.WaitPhase(ctx, "connected"); err != nil {
			t.Fatal(err)
		}
		cls = append(cls, cl)
	}
	tr := StartTracer(t, ctx, pidArg(cls[0]), noSeeding)
	var reps []*actorreport.Report
	for _, cl := range cls {
		release(t, cl, "connected")
		reps = append(reps, finish(t, ctx, cl))
	}
	evs := tr.Stop(t)
	for _, r := range reps {
		if got := errnoNamesOf(r.Sockets[0].Failed()); fmt.Sprint(got) != "[ECONNRESET EPIPE]" {
			t.Fatalf("lab: the actor saw %v, want [ECONNRESET EPIPE]", got)
		}
	}
	checkOnly(t, evs, reps[0])
	checkSendErrors(t, evs, reps[0], joinedLayer())
	if n := len(OfKind(evs, "receive_reset", reps[0].Sockets[0].Cookie)); n != 1 {
		t.Errorf("%d receive_reset events for the traced connection, want 1", n)
	}
	checkViaProc(t, tr, evs, reps[0], "receive_reset")
}
