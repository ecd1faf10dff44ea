package record_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// withoutSeeding makes the test's recordings switch the owner-seeding
// iterator off, as a kernel whose verifier refuses it would: the server's
// listener, made before the recording, has no owner in the kernel, and
// only its /proc lookup gives the sockets accepted from it one.
func withoutSeeding(t *testing.T) {
	recordArgs = []string{"--disable-hook=iter/task_file"}
	t.Cleanup(func() { recordArgs = nil })
}

// The peer-reset join of TestBothEndsPeerReset, recorded under --pid
// without the seeding iterator: the server's accepted socket is still
// recorded from its handshake, so the two ends join, and each recording
// says that its owner-seed layer was degraded.
func TestBothEndsPeerResetWithoutSeeding(t *testing.T) {
	testutil.RequireRoot(t)
	withoutSeeding(t)
	ctx := testutil.Context(t, 2*time.Minute)
	r, dst := balanced(t)
	b := recordBothEnds(t, ctx, r, dst, "reset", func(*recorder) {
		time.Sleep(500 * time.Millisecond)
	})
	j := joinOf(t, b)
	c := j.Joined[0]
	if !c.Failed || c.ResetOrigin != "peer" {
		t.Errorf("reset origin %q (failed %v), want peer", c.ResetOrigin, c.Failed)
	}
	text := sendtrace(t, "report", b.serverRec)
	if !strings.Contains(text, "degraded layer owner-seed") {
		t.Errorf("the server's report does not say owner-seed was degraded:\n%s", text)
	}
}

// The peer-reset join with a server that listens only after the recordings
// started, so that no seeding pass can have found its listener: the
// listener's owner is taken when listen() runs, and the socket accepted
// from it is recorded from its handshake, with each owner store.
func TestBothEndsPeerResetListenerOpenedDuringRecording(t *testing.T) {
	testutil.RequireRoot(t)
	for _, store := range []struct{ name, arg string }{{"sk_storage", ""}, {"legacy", "--disable-hook=sk_storage"}} {
		t.Run(store.name, func(t *testing.T) {
			if store.arg != "" {
				recordArgs = []string{store.arg}
				t.Cleanup(func() { recordArgs = nil })
			}
			ctx := testutil.Context(t, 2*time.Minute)
			r, dst := balanced(t)
			b := recordBothEnds(t, ctx, r, dst, "reset", func(*recorder) {
				time.Sleep(500 * time.Millisecond)
			}, "-pause-before-listen")
			j := joinOf(t, b)
			c := j.Joined[0]
			if !c.Failed || c.ResetOrigin != "peer" {
				t.Errorf("reset origin %q (failed %v), want peer", c.ResetOrigin, c.Failed)
			}
		})
	}
}
