package fleet_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestFlightDiskShort runs serve with its flight directory on a 32 MiB
// tmpfs, mounted in a mount namespace of its own, and fills that file
// system past the recorder's floor: the recorder stops writing, says so
// in one log line and in sendtrace_flight_disk_short, counts the events
// it drops, while the failure counts stay the kernel's; once the space
// is freed it writes again.
func TestFlightDiskShort(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	tmp := t.TempDir()
	mnt := filepath.Join(tmp, "mnt")
	ready := filepath.Join(tmp, "ready")
	addr := freeAddr(t)
	script := `mkdir -p "$1" && mount -t tmpfs -o size=32m,mode=0700 tmpfs "$1" && shift && exec "$@"`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", mnt,
		sendtraceBin, "serve", "--listen", addr, "--ready-file", ready, "--events=false", "--dst="+lab.Link.V4Net.String(),
		"--flight-dir", filepath.Join(mnt, "flight"), "--flight-max-size", "4MiB", "--flight-min-free", "16MiB")
	var stderr testutil.LockedBuffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("serve stderr:\n%s", stderr.Bytes())
		}
	})
	wctx, cancel := context.WithTimeout(ctx, tracerReady)
	defer cancel()
	if err := testutil.WaitFile(wctx, ready); err != nil {
		t.Fatalf("serve not ready: %v\n%s", err, stderr.Bytes())
	}
	// In serve's mount namespace, where the tmpfs is, and under its root
	// directory (entering a mount namespace resets the root, which leaves
	// a chroot).
	inNS := func(args ...string) {
		t.Helper()
		out, err := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(cmd.Process.Pid), "-m", "-r"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	metric := func(re string) float64 {
		v, _ := strconv.ParseFloat(metricValue(t, ctx, addr, regexp.MustCompile(`(?m)^`+re+` (\S+)$`)), 64)
		return v
	}
	waitMetric := func(re string, ok func(float64) bool) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := testutil.Poll(pctx, 100*time.Millisecond, func() (bool, error) { return ok(metric(re)), nil }); err != nil {
			t.Fatalf("%s = %v: %v", re, metric(re), err)
		}
		t.Logf("%s = %v", re, metric(re))
	}
	fail := func(n int) {
		t.Helper()
		a := lab.client(t, ctx, n)
		if err := a.Release("start"); err != nil {
			t.Fatal(err)
		}
		if got := len(failedSends(t, ctx, a)); got != n {
			t.Fatalf("lab: %d failed sends, want %d", got, n)
		}
	}
	const failures = `sendtrace_send_failures_total\{errno="EMSGSIZE",workload="[^"]*"\}`
	fail(100)
	waitMetric(`sendtrace_flight_events_written_total`, func(v float64) bool { return v == 100 })

	inNS("fallocate", "-l", "20M", filepath.Join(mnt, "fill"))
	waitMetric(`sendtrace_flight_disk_short`, func(v float64) bool { return v == 1 })
	fail(300)
	waitMetric(`sendtrace_flight_dropped_events_total\{cause="disk_short"\}`, func(v float64) bool { return v == 300 })
	if got := metric(failures); got != 400 {
		t.Errorf("%s = %v while the disk is short, want the 400 failed sends the processes saw", failures, got)
	}
	if n := strings.Count(string(stderr.Bytes()), "below the floor of 16 MiB: stopped writing"); n != 1 {
		t.Errorf("%d log lines saying the recorder stopped, want one:\n%s", n, stderr.Bytes())
	}

	inNS("rm", filepath.Join(mnt, "fill"))
	waitMetric(`sendtrace_flight_disk_short`, func(v float64) bool { return v == 0 })
	fail(50)
	waitMetric(`sendtrace_flight_events_written_total`, func(v float64) bool { return v == 150 })
	if !strings.Contains(string(stderr.Bytes()), "writing again") {
		t.Errorf("no log line saying the recorder writes again:\n%s", stderr.Bytes())
	}
	for _, line := range strings.Split(string(stderr.Bytes()), "\n") {
		if strings.Contains(line, "flight recorder") {
			t.Logf("serve: %s", line)
		}
	}
}
