package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestServeRetiresExitedProcesses runs many short-lived processes, each
// failing sends, in one systemd unit's cgroup: /metrics must count every
// failure they saw, and once they have exited the kernel's totals map
// must hold none of their keys (serve moved them into its own counts),
// so that weeks of processes coming and going do not fill the map.
func TestServeRetiresExitedProcesses(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := fleetContext(t)
	unit := "sendtrace-retire-" + randomHex(t, 8) + ".service"
	dir, _ := makeCgroup(t, "system.slice/"+unit)
	srv := startServe(t, ctx, "--unit", unit, "--events=false")

	const procs, sendsEach = 25, 3
	var pids []int
	for range procs {
		pid, err := failSendsIn(ctx, dir, sendsEach, 0)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}

	want := strconv.Itoa(procs * sendsEach)
	series := regexp.MustCompile(`(?m)^sendtrace_send_failures_total\{errno="EPIPE",workload="systemd/` + regexp.QuoteMeta(unit) + `"\} (\S+)$`)
	var got string
	var left int
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = testutil.Poll(pctx, 200*time.Millisecond, func() (bool, error) {
		got = metricValue(t, ctx, srv.addr, series)
		left = totalsKeysOf(t, ctx, srv.PID(), pids)
		return got == want && left == 0, nil
	})
	if got != want {
		all := regexp.MustCompile(`(?m)^sendtrace_send_failures_total.*$`).FindAll(srv.metrics(t, ctx), -1)
		t.Errorf("/metrics counts %q failed sends of systemd/%s; the %d processes saw %s; every send failure series: %s", got, unit, procs, want, bytes.Join(all, []byte("; ")))
	}
	if left != 0 {
		t.Errorf("the kernel's totals map still holds %d keys of the %d processes that exited", left, procs)
	}
	// A scrape after the retirement still counts them all.
	if again := metricValue(t, ctx, srv.addr, series); again != want {
		t.Errorf("after the processes were retired, /metrics counts %q, want %s", again, want)
	}
	t.Logf("%d processes, %d failed sends each: /metrics %s; their keys left in the kernel's totals: %d", procs, sendsEach, got, left)
}

// totalsKeysOf counts the keys of pids in the totals map that the
// sendtrace process owner holds (found through its file descriptors),
// read with bpftool.
func totalsKeysOf(t *testing.T, ctx context.Context, owner int, pids []int) int {
	t.Helper()
	id := 0
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", owner))
	for _, fd := range fds {
		info, err := os.ReadFile(fd)
		m := regexp.MustCompile(`(?m)^map_id:\s+(\d+)$`).FindSubmatch(info)
		if err != nil || m == nil {
			continue
		}
		out, err := exec.CommandContext(ctx, "bpftool", "-j", "map", "show", "id", string(m[1])).Output()
		var shown struct {
			Name string `json:"name"`
		}
		if err == nil && json.Unmarshal(out, &shown) == nil && shown.Name == "totals" {
			id, _ = strconv.Atoi(string(m[1]))
			break
		}
	}
	if id == 0 {
		t.Fatalf("no totals map among the file descriptors of pid %d", owner)
	}
	out, err := exec.CommandContext(ctx, "bpftool", "-j", "map", "dump", "id", strconv.Itoa(id)).Output()
	if err != nil {
		t.Fatalf("bpftool map dump: %v", err)
	}
	var entries []struct {
		Formatted struct {
			Key struct {
				PID int `json:"pid"`
			} `json:"key"`
		} `json:"formatted"`
	}
	if err := json.Unmarshal(out, &entries); err != nil {
		t.Fatalf("bpftool map dump: %v", err)
	}
	of := map[int]bool{}
	for _, p := range pids {
		of[p] = true
	}
	n := 0
	for _, e := range entries {
		if of[e.Formatted.Key.PID] {
			n++
		}
	}
	return n
}

// errWrongPID: the process did not get the pid asked for.
var errWrongPID = errors.New("the process did not get the pid asked for")

// failSendsIn runs a short-lived process in cgroup dir that fails n sends
// (EPIPE, on an unconnected TCP socket) and exits, and returns its pid.
// With pid > 0 the process must have that pid, or it exits before
// joining the cgroup and failSendsIn returns errWrongPID.
func failSendsIn(ctx context.Context, dir string, n, pid int) (int, error) {
	// The shell moves itself into the cgroup, then becomes python.
	cmd := exec.CommandContext(ctx, "sh", "-c", `[ "$3" = 0 ] || [ "$$" = "$3" ] || exit 3
echo $$ > "$1/cgroup.procs" && exec python3 -c "$2"`, "sh", dir,
		fmt.Sprintf(`import socket
s = socket.socket()
for _ in range(%d):
    try:
        s.send(b"x", socket.MSG_NOSIGNAL)
    except BrokenPipeError:
        pass
    else:
        raise SystemExit("a send on an unconnected socket succeeded")`, n), strconv.Itoa(pid))
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
		return 0, errWrongPID
	}
	if err != nil {
		return 0, fmt.Errorf("short-lived process: %v\n%s", err, out)
	}
	return cmd.Process.Pid, nil
}

// TestServePIDReuse: a process of one unit fails sends and exits; once
// serve has retired it, a process of another unit is given the same pid
// (through ns_last_pid) and fails sends too. Each unit's series must
// count its own process's failures: the new process is not counted under
// the old one's workload.
func TestServePIDReuse(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := fleetContext(t)
	first := "sendtrace-reuse-a-" + randomHex(t, 6) + ".service"
	second := "sendtrace-reuse-b-" + randomHex(t, 6) + ".service"
	dirA, _ := makeCgroup(t, "system.slice/"+first)
	dirB, _ := makeCgroup(t, "system.slice/"+second)
	srv := startServe(t, ctx, "--unit", first, "--unit", second, "--events=false")
	series := func(unit string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^sendtrace_send_failures_total\{errno="EPIPE",workload="systemd/` + regexp.QuoteMeta(unit) + `"\} (\S+)$`)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if testutil.Poll(pctx, 200*time.Millisecond, func() (bool, error) { return ok(), nil }) != nil {
			t.Fatalf("%s: not within 30 s", what)
		}
	}

	pid, err := failSendsIn(ctx, dirA, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitFor("the first process's 3 failures exported and its keys retired", func() bool {
		return metricValue(t, ctx, srv.addr, series(first)) == "3" && totalsKeysOf(t, ctx, srv.PID(), []int{pid}) == 0
	})

	// The next fork gets ns_last_pid + 1 when it is free; other forks on
	// the machine may take it first, so try again.
	for try := 0; ; try++ {
		if try == 100 {
			t.Fatalf("no process got pid %d again in %d tries", pid, try)
		}
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0o644); err != nil {
			t.Fatalf("ns_last_pid: %v", err)
		}
		_, err := failSendsIn(ctx, dirB, 5, pid)
		if errors.Is(err, errWrongPID) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	var a, b string
	waitFor("the second process's 5 failures exported", func() bool {
		a, b = metricValue(t, ctx, srv.addr, series(first)), metricValue(t, ctx, srv.addr, series(second))
		return b == "5" || a != "3"
	})
	if a != "3" || b != "5" {
		t.Errorf("pid %d reused: /metrics counts %q for systemd/%s (want 3) and %q for systemd/%s (want 5)", pid, a, first, b, second)
	}
	t.Logf("pid %d: systemd/%s %s, then systemd/%s %s", pid, first, a, second, b)
}
