package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
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
		// The shell moves itself into the unit's cgroup, then becomes
		// python, which fails sendsEach sends on an unconnected TCP
		// socket (EPIPE) and exits.
		cmd := exec.CommandContext(ctx, "sh", "-c", `echo $$ > "$1/cgroup.procs" && exec python3 -c "$2"`, "sh", dir,
			fmt.Sprintf(`import socket
s = socket.socket()
for _ in range(%d):
    try:
        s.send(b"x", socket.MSG_NOSIGNAL)
    except BrokenPipeError:
        pass
    else:
        raise SystemExit("a send on an unconnected socket succeeded")`, sendsEach))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("short-lived process: %v\n%s", err, out)
		}
		pids = append(pids, cmd.Process.Pid)
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
