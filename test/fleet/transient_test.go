package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestServeTransientUnits runs 300 transient units as systemd runs them:
// each a cgroup made for one process, which is born in it, fails one send
// and exits, and the cgroup is removed as soon as the process is reaped.
// Every unit's failure must be counted under its own name, not under its
// process or unknown: a name must not depend on the cgroup still being
// there when serve reads the event. It runs each way serve names
// new cgroups: the kernel's cgroup_mkdir tracepoint, and inotify alone
// (where the tracepoint cannot be read: without tracefs or CAP_SYS_ADMIN
// to mount it), and the ready file must say that way, so a way that
// falls back to the other fails here. The tracepoint keeps every name
// however late serve reads it, so it must name all 300; inotify loses a
// cgroup removed before serve has read its inotify event, which a loaded
// machine can delay, so it must name at least 90% of them and file the
// rest under their process (process/COMM), as docs/agent.md says,
// never under another unit or unknown.
func TestServeTransientUnits(t *testing.T) {
	testutil.RequireRoot(t)
	built, err := testutil.Build(t.TempDir(), "SENDTRACE_FAILER_BIN", "github.com/sendtrace/sendtrace/test/fleet/testdata/failer")
	if err != nil {
		t.Fatal(err)
	}
	// A process name of this run's own (a command's name is the name it
	// was run by): other tests on the machine run failer too, and their
	// failures must not count as these units'.
	failer := filepath.Join(t.TempDir(), "failer"+randomHex(t, 8))
	if err := os.Symlink(built, failer); err != nil {
		t.Fatal(err)
	}
	for _, way := range []struct {
		name, names string
		least       int
		start       func(t *testing.T, ctx context.Context, args ...string) *server
		args        []string
	}{
		{"tracepoint", "tracepoint/cgroup_mkdir", 300, startServe, nil},
		{"inotify", "inotify", 270, startServe, []string{"--disable-hook", "tracepoint/cgroup_mkdir"}},
		{"daemonset", "tracepoint/cgroup_mkdir", 300, startServeAsDaemonSet, nil},
		{"systemd-unit", "tracepoint/cgroup_mkdir", 300, startServeAsSystemdUnit, nil},
	} {
		t.Run(way.name, func(t *testing.T) {
			transientUnits(t, failer, way.names, way.least, way.start, way.args...)
		})
	}
}

// startServeAsDaemonSet runs serve as deploy/kubernetes's DaemonSet does:
// uid 0 holding only CAP_BPF and CAP_PERFMON (no CAP_SYS_ADMIN to mount
// tracefs), with the node's cgroup tree and tracefs below --host-root,
// and no tracefs at /sys/kernel/tracing or below /sys/kernel/debug of its
// own (a container's /sys has none; this one hides the machine's).
func startServeAsDaemonSet(t *testing.T, ctx context.Context, args ...string) *server {
	t.Helper()
	host := t.TempDir()
	for _, d := range []string{"sys/fs/cgroup", "sys/kernel/tracing"} {
		if err := os.MkdirAll(filepath.Join(host, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return startServeInMountNS(t, ctx, fmt.Sprintf(`mount --bind %[1]q %[2]q/sys/fs/cgroup
mount -t tracefs nodev %[2]q/sys/kernel/tracing
mount -t tmpfs none /sys/kernel/tracing
mount -t tmpfs none /sys/kernel/debug
exec setpriv --bounding-set=-all,+bpf,+perfmon --inh-caps=-all %[3]q "$@" --host-root %[2]q
`, cgroupV2(t), host, sendtraceBin), args...)
}

// startServeAsSystemdUnit runs serve as deploy/systemd's unit does: an
// unprivileged user (DynamicUser) holding only CAP_BPF, CAP_PERFMON and
// CAP_DAC_READ_SEARCH, on a host that has tracefs mounted at
// /sys/kernel/tracing (as systemd mounts it at boot), whose root-only
// directories it reads with CAP_DAC_READ_SEARCH.
func startServeAsSystemdUnit(t *testing.T, ctx context.Context, args ...string) *server {
	t.Helper()
	caps := "-all,+bpf,+perfmon,+dac_read_search"
	return startServeInMountNS(t, ctx, fmt.Sprintf(`mount -t tracefs nodev /sys/kernel/tracing
# The ready file's directory ($2 is --ready-file's value) is the test's.
chmod 0777 "$(dirname "$2")"
exec setpriv --reuid=%[1]s --regid=%[1]s --clear-groups --inh-caps=%[2]s --ambient-caps=%[2]s %[3]q "$@"
`, nobody, caps, sendtraceBin), args...)
}

// startServeInMountNS starts serve through a wrapper whose setup, shell
// lines ending in an exec of sendtrace with "$@", runs in a mount
// namespace of its own: what it mounts or hides is serve's alone.
func startServeInMountNS(t *testing.T, ctx context.Context, setup string, args ...string) *server {
	t.Helper()
	wrapper := filepath.Join(t.TempDir(), "sendtrace-in-mount-ns")
	script := `#!/bin/sh
set -e
if [ -z "$SENDTRACE_MOUNT_NS" ]; then
	export SENDTRACE_MOUNT_NS=1
	exec unshare --mount --propagation private "$0" "$@"
fi
` + setup
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return startServeBin(t, ctx, wrapper, args...)
}

// transientUnits runs the 300 units under a serve started by serveWith with
// args, whose ready file must say it names new cgroups through names; at
// least least of them must be named by their units, and the others by
// their process.
func transientUnits(t *testing.T, failer, names string, least int, serveWith func(*testing.T, context.Context, ...string) *server, args ...string) {
	ctx := testutil.Context(t, 6*time.Minute)
	const units, workers = 300, 2
	run := randomHex(t, 8)
	slice, _ := makeCgroup(t, "system.slice/sendtrace-transient-"+run+".slice")
	comm := filepath.Base(failer)
	srv := serveWith(t, ctx, append([]string{"--comm", comm, "--events=false", "--max-workloads", "1000"}, args...)...)
	ready, _ := os.ReadFile(srv.ReadyFile)
	if want := "\ncgroup-names\t" + names + "\n"; !strings.Contains(string(ready), want) {
		t.Fatalf("ready file lacks %q:\n%s\nstderr:\n%s", want[1:len(want)-1], ready, srv.Stderr())
	}

	unit := func(i int) string { return fmt.Sprintf("sendtrace-transient-%s-%d.service", run, i) }
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := transientUnit(ctx, filepath.Join(slice, unit(i)), failer); err != nil {
					errs <- fmt.Errorf("%s: %w", unit(i), err)
					return
				}
			}
		})
	}
	start := time.Now()
feed:
	for i := range units {
		select {
		case next <- i:
		case err := <-errs:
			t.Error(err)
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d transient units ran and were removed in %v", units, time.Since(start).Round(time.Millisecond))

	// Every failure is counted (the kernel's totals) at once; what is
	// checked is the workload each is filed under, once the events that
	// name them have been read (a process that exited before is
	// "unknown" until then).
	series := regexp.MustCompile(`(?m)^sendtrace_send_failures_total\{errno="EPIPE",workload="([^"]*)"\} (\S+)$`)
	named := regexp.MustCompile(`^systemd/sendtrace-transient-` + run + `-(\d+)\.service$`)
	var right, byProcess, total int
	var misnamed []string
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = testutil.Poll(pctx, 500*time.Millisecond, func() (bool, error) {
		right, byProcess, total, misnamed = 0, 0, 0, nil
		for _, m := range series.FindAllSubmatch(srv.metrics(t, ctx), -1) {
			var n int
			fmt.Sscan(string(m[2]), &n)
			total += n
			switch {
			case named.Match(m[1]) && n == 1:
				right++
			case string(m[1]) == "process/"+comm && least < units:
				byProcess += n
			default:
				misnamed = append(misnamed, fmt.Sprintf("%s %d", m[1], n))
			}
		}
		return right == units || (right >= least && right+byProcess == units), nil
	})
	if right < least || right+byProcess != units || len(misnamed) > 0 {
		t.Errorf("%d of %d transient units named right, %d by their process, want at least %d right and the rest by their process (%d failures counted); the rest: %q", right, units, byProcess, least, total, misnamed)
	}
	t.Logf("%d of %d transient units named right, %d by their process; %d failures counted", right, units, byProcess, total)
}

// transientUnit makes the cgroup dir, runs failer born in it (clone3
// into the cgroup, as a service manager starts a unit's process), and
// removes the cgroup as soon as failer has been reaped.
func transientUnit(ctx context.Context, dir, failer string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	cg, err := os.Open(dir)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, failer)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	out, err := cmd.CombinedOutput()
	cg.Close()
	if err != nil {
		_ = os.Remove(dir)
		return fmt.Errorf("failer: %v: %s", err, out)
	}
	// The cgroup is empty once its process is reaped; the kernel may
	// take a moment to say so.
	for {
		err := os.Remove(dir)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove %s: %w", dir, err)
		case <-time.After(time.Millisecond):
		}
	}
}
