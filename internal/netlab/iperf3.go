package netlab

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// StartIperf3Server runs Debian's iperf3 in the namespace as a one-off
// server on addr (it serves one client, then exits), and waits until it
// listens. It is killed in t's cleanup.
func (n *NS) StartIperf3Server(t testing.TB, ctx context.Context, addr netip.AddrPort) {
	t.Helper()
	port := strconv.Itoa(int(addr.Port()))
	cmd := n.Command(context.Background(), "iperf3", "-s", "-1", "-B", addr.Addr().String(), "-p", port)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start iperf3 server (scripts/deps.sh installs it): %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	err := testutil.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		out, err := n.Run("ss", "-Hltn", "sport", "=", ":"+port)
		return strings.TrimSpace(out) != "", err
	})
	if err != nil {
		t.Fatalf("iperf3 server not listening on %v: %v", addr, err)
	}
}

// WaitSocketsGone waits until the namespace has no TCP socket left but
// TIME_WAIT ones: a socket closed with data unacknowledged goes on
// retransmitting, orphaned, after its process has exited, and the
// namespace's counters count those retransmits too.
func (n *NS) WaitSocketsGone(t testing.TB, ctx context.Context) {
	t.Helper()
	err := testutil.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		out, err := n.Run("ss", "-Htan", "state", "all", "exclude", "time-wait", "exclude", "listening")
		return strings.TrimSpace(out) == "", err
	})
	if err != nil {
		out, _ := n.Run("ss", "-tan")
		t.Fatalf("sockets still open in %s: %v\n%s", n.Name, err, out)
	}
}
