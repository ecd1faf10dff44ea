package scenario_test

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
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

// A reset from the server's side of a connection made before the session,
// traced with --pid and no seeding: the reset received and the error
// report reach the stream, attributed through /proc; another process's
// connection, reset the same way, does not. The server's namespace
// answers each client's next segment with a reset once sendtrace runs, so
// the reset cannot come before it, however slowly sendtrace starts.
func TestOwnerByProcPeerReset(t *testing.T) {
	ctx := scenarioContext(t)
	sp := newStalledPath(t, ctx, 2)
	sp.connect(t, ctx)
	tr := StartTracer(t, ctx, pidArg(sp.clients[0]), noSeeding)
	reps, _ := sp.stall(t, ctx, "reject with tcp reset")
	evs := tr.Stop(t)
	for _, r := range reps {
		if got := errnoNamesOf(r.Sockets[0].Failed()); len(got) == 0 || got[0] != "ECONNRESET" {
			t.Fatalf("lab: the actor saw %v, want ECONNRESET first", got)
		}
	}
	checkOnly(t, evs, reps[0])
	checkSendErrors(t, evs, reps[0], joinedLayer())
	if n := len(OfKind(evs, "receive_reset", reps[0].Sockets[0].Cookie)); n != 1 {
		t.Errorf("%d receive_reset events for the traced connection, want 1", n)
	}
	checkViaProc(t, tr, evs, reps[0], "receive_reset")
}
