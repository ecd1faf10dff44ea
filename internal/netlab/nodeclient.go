package netlab

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// NodeHTTP is NodeHTTPServer in one namespace and NodeHTTPClient in
// another, the client parked before its first request until Release.
type NodeHTTP struct {
	Server, Client *exec.Cmd
	clientOut      testutil.LockedBuffer
	goFile         string
	clientDone     chan error
}

// StartNodeHTTP writes the scripts to dir, starts the server in srvNS on
// listen and waits until it listens, then starts the client in cliNS
// towards connect with the client's IDLE_MS [BUSY_MS] arguments. Both are
// killed when the test ends.
func StartNodeHTTP(t *testing.T, ctx context.Context, dir string, srvNS *NS, listen netip.AddrPort, cliNS *NS, connect netip.AddrPort, timings ...string) *NodeHTTP {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Debian's nodejs, scripts/deps.sh) is needed: %v", err)
	}
	for name, src := range map[string]string{"server.js": NodeHTTPServer, "client.js": NodeHTTPClient} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ready := filepath.Join(dir, "ready")
	srv := srvNS.Command(context.Background(), node, filepath.Join(dir, "server.js"), listen.Addr().String(), strconv.Itoa(int(listen.Port())), ready)
	var srvOut testutil.LockedBuffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan struct{})
	go func() { _ = srv.Wait(); close(srvDone) }()
	t.Cleanup(func() { _ = srv.Process.Kill(); <-srvDone })
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := testutil.WaitFile(wctx, ready); err != nil {
		t.Fatalf("node server not listening: %v: %s", err, srvOut.Bytes())
	}

	h := &NodeHTTP{Server: srv, goFile: filepath.Join(dir, "go"), clientDone: make(chan error, 1)}
	h.Client = cliNS.Command(context.Background(), node, append([]string{filepath.Join(dir, "client.js"),
		connect.Addr().String(), strconv.Itoa(int(connect.Port())), h.goFile}, timings...)...)
	h.Client.Stdout, h.Client.Stderr = &h.clientOut, &h.clientOut
	if err := h.Client.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.clientDone <- h.Client.Wait() }()
	t.Cleanup(func() { _ = h.Client.Process.Kill(); h.clientDone <- <-h.clientDone })
	return h
}

// Release lets the client make its requests.
func (h *NodeHTTP) Release(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(h.goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// WaitClient waits for the client to exit and returns what it printed.
func (h *NodeHTTP) WaitClient(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	select {
	case err := <-h.clientDone:
		h.clientDone <- err
		if err != nil {
			t.Fatalf("node client: %v: %s", err, h.clientOut.Bytes())
		}
	case <-ctx.Done():
		t.Fatalf("node client still running: %s", h.clientOut.Bytes())
	}
	return h.clientOut.Bytes()
}
