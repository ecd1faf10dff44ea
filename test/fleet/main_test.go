// Package fleet_test runs the built sendtrace binary as a fleet runs it:
// workloads in real cgroups and a real runc container, `sendtrace serve`
// scraped by a real Prometheus, as a user holding only CAP_BPF and
// CAP_PERFMON, under the shipped systemd unit and Kubernetes manifests.
package fleet_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
	"github.com/sendtrace/sendtrace/internal/workload"
)

var (
	sendtraceBin string
	actorBin     string
)

func TestMain(m *testing.M) {
	testutil.RunMain(m, func(dir string) error {
		return netlab.BuildBinaries(dir, &sendtraceBin, &actorBin)
	})
}

const (
	tracerReady = 60 * time.Second
	tracerStop  = 30 * time.Second
	udpPort     = 9000
)

func fleetContext(t *testing.T) context.Context {
	testutil.RequireRoot(t)
	return testutil.Context(t, 3*time.Minute)
}

// event is what these tests read from a JSON Lines event.
type event struct {
	Kind         string `json:"kind"`
	PID          uint32 `json:"pid"`
	Comm         string `json:"comm"`
	Cgroup       uint64 `json:"cgroup"`
	ErrnoName    string `json:"errno_name"`
	Workload     string `json:"workload"`
	WorkloadInfo *struct {
		Kind      string `json:"kind"`
		Name      string `json:"name"`
		ID        string `json:"id"`
		Pod       string `json:"pod"`
		Namespace string `json:"namespace"`
		Container string `json:"container"`
		Unit      string `json:"unit"`
	} `json:"workload_info"`
	raw string
}

func parseEvents(t *testing.T, out []byte) []event {
	t.Helper()
	var evs []event
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not JSON: %v: %s", err, line)
		}
		e.raw = line
		evs = append(evs, e)
	}
	return evs
}

func sendErrors(evs []event, cgroup uint64) []event {
	var out []event
	for _, e := range evs {
		if e.Kind == "send_error" && e.Cgroup == cgroup {
			out = append(out, e)
		}
	}
	return out
}

// cgroupV2 is the cgroup v2 mount, found as sendtrace finds it.
func cgroupV2(t *testing.T) string {
	t.Helper()
	root, err := workload.CgroupV2Mount()
	if err != nil {
		t.Fatalf("this test makes real cgroups: %v", err)
	}
	return root
}

// makeCgroup creates a cgroup v2 directory (and its parents) and removes
// what it created when the test ends. It returns the directory and its
// id, the inode number events carry.
func makeCgroup(t *testing.T, rel string) (string, uint64) {
	t.Helper()
	root := cgroupV2(t)
	dir := filepath.Join(root, rel)
	var created []string
	for p := dir; p != root; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		}
		created = append(created, p)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A parent may be shared with another test by now (another
		// run's, in system.slice): while it holds that test's cgroup, it
		// and the parents above it stay.
		for i, p := range created {
			if !removeCgroup(t, p, i > 0) {
				return
			}
		}
	})
	return dir, inode(t, dir)
}

// holdsCgroups says whether cgroup p has a cgroup below it.
func holdsCgroups(p string) bool {
	entries, _ := os.ReadDir(p)
	for _, e := range entries {
		if e.IsDir() {
			return true
		}
	}
	return false
}

// removeCgroup removes a cgroup once its last process has gone, and says
// whether it is gone. A shared one (a parent) stays while it holds
// another cgroup.
func removeCgroup(t *testing.T, p string, shared bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := testutil.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		err := os.Remove(p)
		return err == nil || os.IsNotExist(err) || (shared && holdsCgroups(p)), nil
	})
	if err != nil {
		t.Errorf("remove cgroup %s: %v", p, err)
	}
	return !(shared && holdsCgroups(p))
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return statIno(st)
}
