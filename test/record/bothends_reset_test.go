package record_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestBothEndsResetUnknown: the balancer forgets the idle flow and resets
// the client as in TestBothEndsMiddleboxReset, but the server's recording
// stopped before that: nobody can say who sent the reset.
func TestBothEndsResetUnknown(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 2*time.Minute)
	r, dst := balanced(t)
	r.ApplyMiddlebox(t, netlab.Middlebox{Idle: time.Second, Reset: true})
	b := recordBothEnds(t, ctx, r, dst, "discard", func(srvRec *recorder) {
		time.Sleep(300 * time.Millisecond)
		_ = srvRec.cmd.Process.Signal(syscall.SIGINT)
		srvRec.wait(t, ctx)
		time.Sleep(2500 * time.Millisecond)
	})
	wantFirstErrno(t, b.client, syscall.ECONNRESET, syscall.EPIPE)
	c := joinOf(t, b).Joined[0]
	if !c.Failed || c.ResetOrigin != "unknown" || !strings.Contains(c.Diagnosis, "who sent the reset is unknown") {
		t.Errorf("reset origin %q, diagnosis %q: want unknown, the server's recording had stopped", c.ResetOrigin, c.Diagnosis)
	}
	if c.Ends[0].IdleMs == nil || *c.Ends[0].IdleMs < 2000 || c.Ends[1].IdleMs != nil {
		t.Errorf("idle client %v, server %v: want the client's 2.5 s, and none for the server, whose recording did not cover the failure", c.Ends[0].IdleMs, c.Ends[1].IdleMs)
	}
}

// TestBothEndsServerResetsLater: the balancer forgets the idle flow and
// resets the client; the server, whose own idle limit is longer, aborts
// with SO_LINGER 0 a few seconds later. The server did send a reset, but
// after the client had received one: the middlebox's, not the server's.
func TestBothEndsServerResetsLater(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 2*time.Minute)
	r, dst := balanced(t)
	r.ApplyMiddlebox(t, netlab.Middlebox{Idle: time.Second, Reset: true})
	b := recordBothEnds(t, ctx, r, dst, "reset", func(*recorder) {
		time.Sleep(2500 * time.Millisecond)
	}, "-reset-after", "5s")
	wantFirstErrno(t, b.client, syscall.ECONNRESET, syscall.EPIPE)
	c := joinOf(t, b).Joined[0]
	if !c.Failed || c.ResetOrigin != "middlebox" || !strings.Contains(c.Diagnosis, "forgot the flow") {
		t.Errorf("reset origin %q, diagnosis %q: want the middlebox, whose reset came before the server's", c.ResetOrigin, c.Diagnosis)
	}
	// The server's kernel did send one reset, and the client's namespace
	// took one in ESTABLISHED.
	if n := nstatValue(t, r.Server, "TcpOutRsts"); n != 1 {
		t.Errorf("the server's namespace sent %d resets, want its 1 abortive close", n)
	}
	if n := nstatValue(t, r.Client, "TcpEstabResets"); n != 1 {
		t.Errorf("the client's namespace counted %d resets of established connections, want 1", n)
	}
}
