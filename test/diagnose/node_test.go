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

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// nodeServer answers every request with a small body and keeps idle
// keep-alive connections far longer than the middlebox does.
const nodeServer = `
const http = require('http');
const [host, port, ready] = process.argv.slice(2);
const srv = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok\n')); });
srv.keepAliveTimeout = 60000;
srv.listen(Number(port), host, () => require('fs').writeFileSync(ready, ''));
`

// nodeClient is a pooled HTTP client: request 1, a silence longer than the
// middlebox's idle timeout, then request 2 on the same kept-alive socket.
// It prints what each request got.
const nodeClient = `
const http = require('http');
const fs = require('fs');
const [host, port, goFile, idleMs] = process.argv.slice(2);
// keepAliveMsecs is also the socket's TCP keepalive delay: at its default
// (1 s) the probes would keep the middlebox's flow alive.
const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 30000, maxSockets: 1 });
const results = [];
function get(n, via = agent) {
  return new Promise((resolve) => {
    const req = http.get({ host, port: Number(port), path: '/' + n, agent: via }, (res) => {
      res.resume();
      res.on('end', () => { results.push({ n, status: res.statusCode, reused: req.reusedSocket }); resolve(); });
    });
    req.on('error', (e) => { results.push({ n, error: e.code, reused: req.reusedSocket }); resolve(); });
  });
}
(async () => {
  // A first request on a throwaway connection warms both ends up, so the
  // pooled connection's answer comes within milliseconds of its handshake,
  // as on a fast network.
  await get(0, false);
  while (!fs.existsSync(goFile)) await new Promise((r) => setTimeout(r, 20));
  await get(1);
  await new Promise((r) => setTimeout(r, Number(idleMs)));
  await get(2);
  console.log(JSON.stringify({ pid: process.pid, results }));
  agent.destroy();
})();
`

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
	for name, src := range map[string]string{"server.js": nodeServer, "client.js": nodeClient} {
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
