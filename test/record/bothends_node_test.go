package record_test

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestBothEndsNodeKeepAlive joins the ends of a connection that neither
// end's program was written for sendtrace: Node.js's keep-alive agent
// against Node.js's HTTP server, through the balancer, which forgets the
// pooled connection while it idles and resets the client on reuse. The
// connection is busy for 1.5 s first: receives leave no event, so each
// end's idle time must come from the kernel's own since-last-receive, not
// from the handshake.
func TestBothEndsNodeKeepAlive(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 2*time.Minute)
	r, dst := balanced(t)
	r.ApplyMiddlebox(t, netlab.Middlebox{Idle: time.Second, Reset: true})
	dir := keepDir(t)
	h := netlab.StartNodeHTTP(t, ctx, dir, r.Server, dst, r.Client, vip, "2500", "1500")
	srv, cl := h.Server, h.Client

	clientRec, serverRec := filepath.Join(dir, "client.jsonl"), filepath.Join(dir, "server.jsonl")
	srvRec := startRecorder(t, ctx, serverRec, nil, "--pid", strconv.Itoa(srv.Process.Pid))
	cliRec := startRecorder(t, ctx, clientRec, nil, "--pid", strconv.Itoa(cl.Process.Pid))
	h.Release(t)
	clOut := h.WaitClient(t, ctx)
	cliRec.wait(t, ctx)
	_ = srv.Process.Signal(syscall.SIGTERM)
	srvRec.wait(t, ctx)

	var got struct {
		PID     int
		Results []struct {
			N      int
			Status int
			Error  string
			Reused bool
		}
	}
	if err := json.Unmarshal(clOut, &got); err != nil {
		t.Fatalf("node client output: %v: %s", err, clOut)
	}
	t.Logf("node client: %s", clOut)
	last := len(got.Results) - 1
	if last < 4 || got.Results[last].Error != "ECONNRESET" || !got.Results[last].Reused {
		t.Fatalf("lab: want requests answered for 1.5 s and the last one ECONNRESET on the reused socket, got %+v", got.Results)
	}
	for _, res := range got.Results[:last] {
		if res.Status != 200 {
			t.Fatalf("lab: request %d got %+v, want 200", res.N, res)
		}
	}

	t.Logf("report %s %s:\n%s", clientRec, serverRec, sendtrace(t, "report", clientRec, serverRec))
	out := sendtrace(t, "report", "-o", "json", clientRec, serverRec)
	var j joinReport
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var failed []int
	for i, c := range j.Joined {
		if c.Failed {
			failed = append(failed, i)
		}
	}
	if len(failed) != 1 {
		t.Fatalf("%d failed joined connections, want the one pooled connection:\n%s", len(failed), out)
	}
	c := j.Joined[failed[0]]
	cli, s := c.Ends[0], c.Ends[1]
	if cli.Role != "client" || cli.PID != cl.Process.Pid || cli.Dst != vip || s.Role != "server" || s.PID != srv.Process.Pid || s.Src != dst {
		t.Errorf("ends %+v and %+v: want node's client (pid %d) to %v and node's server (pid %d) on %v", cli, s, cl.Process.Pid, vip, srv.Process.Pid, dst)
	}
	if c.ResetOrigin != "middlebox" || !strings.Contains(c.Diagnosis, "forgot the flow") {
		t.Errorf("reset origin %q, diagnosis %q: want a middlebox that forgot the flow", c.ResetOrigin, c.Diagnosis)
	}
	// Both were silent for the client's 2.5 s, after 1.5 s of requests
	// that left no event. The client's figure is the kernel's at the
	// reset; the server's is exact when its socket has an event after the
	// failure (its close, if recorded before its process exited), else
	// only an upper bound, and said to be one.
	for _, e := range c.Ends {
		switch {
		case e.IdleMs == nil || *e.IdleMs < 2400:
			t.Errorf("%s idle %v ms, want about 2500", e.Role, e.IdleMs)
		case e.IdleAtMost && e.Role == "client":
			t.Errorf("the client's idle time is an upper bound only, but its reset event gives it")
		case !e.IdleAtMost && *e.IdleMs > 3200:
			t.Errorf("%s idle %v ms, want about 2500", e.Role, *e.IdleMs)
		}
	}
	t.Logf("joined: %s", out)
}
