package record_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestRecordExitSummaryHasDiagnoses records a client whose peer resets
// its connection. record's exit summary is the one live mode prints, so
// it ends with the failures-by-diagnosis table, naming the peer reset.
func TestRecordExitSummaryHasDiagnoses(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 2*time.Minute)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	srv := lab.Server.StartActor(t, actorBin, "server", "-mode", "reset", "-listen", dst.String())
	if _, err := srv.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	cl := lab.Client.StartActor(t, actorBin, "client", "-to", dst.String(), "-await-error-before", "1", "-count", "2", "-size", "100")
	if _, err := cl.WaitPhase(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	rec := startRecorder(t, ctx, filepath.Join(t.TempDir(), "reset.jsonl"), []*netlab.Actor{cl})
	if err := cl.Release("start"); err != nil {
		t.Fatal(err)
	}
	finish(t, ctx, []*netlab.Actor{cl})
	rec.wait(t, ctx)

	out := rec.stdout.String()
	i := strings.Index(out, "Failures by diagnosis")
	if i < 0 {
		t.Fatalf("record's exit summary has no failures-by-diagnosis table:\n%s", out)
	}
	if !strings.Contains(out[i:], "peer-reset") {
		t.Errorf("the failures-by-diagnosis table does not name the peer reset:\n%s", out[i:])
	}
}
