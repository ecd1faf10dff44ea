package fleet_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestServeHostRoot runs serve as the DaemonSet does: the host's cgroup
// tree and runtime state only under --host-root, its own /run and
// /sys/fs/cgroup empty (a private mount namespace covers them). A pod's
// runc container must still be named from the state under the root.
func TestServeHostRoot(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	pod := kubePod{uid: "0a1b2c3d-" + randomHex(t, 4) + "-4e5f-8a9b-" + randomHex(t, 12), namespace: "edge", name: "proxy-5d8c9", container: "envoy"}
	c := startRunc(t, ctx, lab.Client, pod, lab.failingArgs(2)...)

	host := t.TempDir()
	for _, d := range []string{"sys/fs/cgroup", "run/runc"} {
		if err := os.MkdirAll(filepath.Join(host, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ready := filepath.Join(t.TempDir(), "ready")
	script := fmt.Sprintf(`set -e
mount --bind %[1]q %[2]q/sys/fs/cgroup && mount -o remount,bind,ro %[2]q/sys/fs/cgroup
mount --bind /run/runc %[2]q/run/runc && mount -o remount,bind,ro %[2]q/run/runc
mount -t tmpfs none /run
mount -t tmpfs none /sys/fs/cgroup
exec %[3]q serve --listen %[4]q --ready-file %[5]q --host-root %[2]q --dst=%[6]s`,
		cgroupV2(t), host, sendtraceBin, freeAddr(t), ready, lab.Link.V4Net)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	var stdout, stderr testutil.LockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	wctx, cancel := context.WithTimeout(ctx, tracerReady)
	defer cancel()
	if err := testutil.WaitFile(wctx, ready); err != nil {
		t.Fatalf("serve under --host-root not ready: %v\n%s", err, stderr.Bytes())
	}
	// serve stops, and so has read every event, while the container
	// still runs: its cgroup names it (see startRunc).
	saw := c.failed(t, ctx)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, stderr.Bytes())
	}
	done <- nil
	c.run(t, ctx)
	got := 0
	for _, e := range parseEvents(t, stdout.Bytes()) {
		if e.Kind == "send_error" && e.WorkloadInfo != nil && e.WorkloadInfo.ID == c.id {
			got++
			if e.Workload != pod.String() {
				t.Errorf("workload %q, want %q: %s", e.Workload, pod, e.raw)
			}
		}
	}
	if saw != 2 || got != saw {
		t.Errorf("%d send errors of the container named, the actor saw %d (want 2)\nstderr: %s", got, saw, stderr.Bytes())
	} else {
		t.Logf("under --host-root %s: %d send errors named %s", host, got, pod)
	}
}
