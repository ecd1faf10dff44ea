package fleet_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestServeExactUnderLoss stalls serve's event stream (stdout is a pipe
// nobody reads) and floods a 1 MiB ring buffer with real failed sends:
// the ring loses events, /metrics must still count every failed send the
// process saw, and say how many events were lost.
func TestServeExactUnderLoss(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	docker := randomHex(t, 64)
	dir, _ := makeCgroup(t, "system.slice/docker-"+docker+".scope")
	const sends = 20000
	a := lab.client(t, ctx, sends)
	moveInto(t, dir, a.PID())

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	addr := freeAddr(t)
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(sendtraceBin, "serve", "--listen", addr, "--ready-file", ready, "--ring-mib", "1", "--dst="+lab.Link.V4Net.String())
	cmd.Stdout = pw
	var stderr testutil.LockedBuffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	wctx, cancel := context.WithTimeout(ctx, tracerReady)
	defer cancel()
	if err := testutil.WaitFile(wctx, ready); err != nil {
		t.Fatalf("serve not ready: %v\n%s", err, stderr.Bytes())
	}
	if err := a.Release("start"); err != nil {
		t.Fatal(err)
	}
	saw := len(failedSends(t, ctx, a))
	if saw != sends {
		t.Fatalf("lab: the actor saw %d failed sends, want %d", saw, sends)
	}
	failures := regexp.MustCompile(`(?m)^sendtrace_send_failures_total\{errno="EMSGSIZE",workload="docker/` + docker[:12] + `"\} (\S+)$`)
	lost := regexp.MustCompile(`(?m)^sendtrace_events_lost_total\{cause="ring_full"\} (\S+)$`)
	var got, gotLost string
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = testutil.Poll(pctx, 100*time.Millisecond, func() (bool, error) {
		got = metricValue(t, ctx, addr, failures)
		gotLost = metricValue(t, ctx, addr, lost)
		return got == strconv.Itoa(saw), nil
	})
	nLost, _ := strconv.ParseFloat(gotLost, 64)
	if got != strconv.Itoa(saw) {
		t.Errorf("/metrics counts %q failed sends of docker/%s, the process saw %d", got, docker[:12], saw)
	}
	if nLost == 0 {
		t.Errorf("sendtrace_events_lost_total %q: the stream never lost an event, so this proves nothing", gotLost)
	}
	t.Logf("the process saw %d failed sends; /metrics: send failures %s, events lost %s", saw, got, gotLost)
}
