package diagnose_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestNodeKeepAliveIdleReset is the pooled-connection failure as Node.js
// meets it: http.Agent keepAlive reuses a socket that a middlebox forgot
// while it idled. The response to request 1 arrived on that socket, so the
// diagnosis must not say the peer never sent data.
func TestNodeKeepAliveIdleReset(t *testing.T) {
	ctx := scenario(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Debian's nodejs) is needed: %v", err)
	}
	lab, dst := idleLab(t, true)
	host, port, _ := strings.Cut(dst, ":")
	dir := t.TempDir()
	for name, src := range map[string]string{"server.js": netlab.NodeHTTPServer, "client.js": netlab.NodeHTTPClient} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ready := filepath.Join(dir, "ready")
	srv := lab.Server.Command(context.Background(), node, filepath.Join(dir, "server.js"), host, port, ready)
	var srvOut testutil.LockedBuffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := testutil.WaitFile(wctx, ready); err != nil {
		t.Fatalf("node server not listening: %v: %s", err, srvOut.Bytes())
	}

	goFile := filepath.Join(dir, "go")
	cl := lab.Client.Command(context.Background(), node, filepath.Join(dir, "client.js"), host, port, goFile, "3500")
	var clOut testutil.LockedBuffer
	cl.Stdout, cl.Stderr = &clOut, &clOut
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cl.Wait() }()
	t.Cleanup(func() { _ = cl.Process.Kill(); <-done })
	tr := startTracer(t, ctx, "--pid="+strconv.Itoa(cl.Process.Pid))
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("node client: %v: %s", err, clOut.Bytes())
		}
	case <-ctx.Done():
		t.Fatalf("node client still running: %s", clOut.Bytes())
	}
	var r struct {
		Results []struct {
			N      int
			Status int
			Error  string
			Reused bool
		}
	}
	if err := json.Unmarshal(clOut.Bytes(), &r); err != nil {
		t.Fatalf("node client output: %v: %s", err, clOut.Bytes())
	}
	t.Logf("node client: %s", clOut.Bytes())
	if len(r.Results) != 3 || r.Results[1].Status != 200 || r.Results[2].Error != "ECONNRESET" || !r.Results[2].Reused {
		t.Fatalf("lab: want request 1 answered and request 2 ECONNRESET on the reused socket, got %+v", r.Results)
	}

	_, ds := tr.stop(t)
	d := want(t, ds, "idle-reset")[0]
	if strings.Contains(d.ConfidenceWhy, "never sent data") {
		t.Errorf("confidence %s because %q, but the peer answered request 1 on this socket", d.Confidence, d.ConfidenceWhy)
	}
	if d.Evidence.Idle < 3*time.Second {
		t.Errorf("idle %v, the client was silent for 3.5s", d.Evidence.Idle)
	}
	if !strings.Contains(d.String(), d.ConfidenceWhy) {
		t.Errorf("the text form does not give the confidence's reason %q: %s", d.ConfidenceWhy, d.String())
	}
}
