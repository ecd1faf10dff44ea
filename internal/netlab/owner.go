package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sendtrace/sendtrace/internal/procstate"
)

// A test binary killed before its cleanups run (go test -timeout, a
// SIGKILL) leaves its namespaces behind. Each namespace therefore gets an
// owner record naming the test process; the first lab of a later run
// deletes the namespaces whose owner is gone. Namespaces without a record
// are never touched: they are not provably a dead test's.
const ownerDir = "/run/sendtrace-netlab"

var sweepOnce sync.Once

// procStart identifies a process across pid reuse: its start time in
// clock ticks since boot (field 22 of /proc/PID/stat).
func procStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// comm (field 2) may hold spaces; the fields after it follow the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: short", pid)
	}
	return f[19], nil
}

func writeOwner(ns string) error {
	start, err := procStart(os.Getpid())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(ownerDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(ownerDir, ns), fmt.Appendf(nil, "%d %s\n", os.Getpid(), start), 0o644)
}

func removeOwner(ns string) { _ = os.Remove(filepath.Join(ownerDir, ns)) }

func ownerAlive(record []byte) bool {
	var pid int
	var start string
	if _, err := fmt.Sscan(string(record), &pid, &start); err != nil {
		return false
	}
	now, err := procStart(pid)
	if err != nil || now != start {
		return false
	}
	// A killed test that nobody has reaped yet is a zombie: dead all the same.
	return procstate.Alive(pid)
}

// sweep deletes the namespaces of dead test processes. Processes still
// inside one keep it alive until they exit (actors die with their test
// through Pdeathsig, or at their own -timeout); deleting only unmounts it.
func sweep() {
	ents, err := os.ReadDir(ownerDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rec, err := os.ReadFile(filepath.Join(ownerDir, e.Name()))
		if err != nil || ownerAlive(rec) {
			continue
		}
		if _, err := os.Stat(filepath.Join("/run/netns", e.Name())); err == nil {
			if _, err := run("ip", "netns", "del", e.Name()); err != nil {
				continue
			}
		}
		removeOwner(e.Name())
	}
}
