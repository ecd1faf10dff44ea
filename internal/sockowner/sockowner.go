// Package sockowner finds the process that holds a socket by the socket's
// inode, through /proc/PID/fd, as `ss -p` does. It answers for the events
// the kernel could not attribute under a process filter (a connection
// older than the session when the seeding iterator is refused): the
// answer is exact for the moment of the scan, and a socket no process the
// filters select holds is not the session's.
package sockowner

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/workload"
)

// Proc is a process that holds a socket.
type Proc struct {
	PID    uint32
	Comm   string
	Cgroup uint64 // cgroup v2 id; 0 when unknown
}

// Finder indexes the sockets of the processes the filters select.
type Finder struct {
	// ProcRoot is /proc, CgroupRoot the cgroup v2 mount ("" when none).
	ProcRoot, CgroupRoot string
	Filters              session.Filters
	// Now reads CLOCK_MONOTONIC in ns, the clock events are stamped with.
	Now func() uint64

	index   map[uint64]Proc
	fresh   map[uint64]Proc // what the last scan found
	scanned uint64          // when the index was built; 0: never
	// Scans counts the scans of /proc, for tests.
	Scans int
}

// Find returns the selected process that holds the socket with inode ino.
// seen is when the event happened: an index built before it may lack a
// socket made or passed since, so it is built again first.
func (f *Finder) Find(ino uint64, seen uint64) (Proc, bool) {
	if p, ok := f.index[ino]; ok {
		return p, true
	}
	if f.scanned != 0 && f.scanned > seen {
		return Proc{}, false
	}
	f.Scan()
	p, ok := f.index[ino]
	return p, ok
}

// Scan reads every selected process's descriptors into the index. What an
// earlier scan found stays: a process may have closed the socket, or
// exited, by the time its event is read, and it was the socket's owner
// all the same (socket inode numbers are not reused within a session).
func (f *Finder) Scan() {
	f.scanned = f.Now()
	f.Scans++
	if f.index == nil {
		f.index = make(map[uint64]Proc)
	}
	f.fresh = make(map[uint64]Proc)
	for _, pid := range f.candidates() {
		p, ok := f.selected(pid)
		if !ok {
			continue
		}
		fdDir := filepath.Join(f.ProcRoot, strconv.FormatUint(uint64(pid), 10), "fd")
		ents, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, ent := range ents {
			target, err := os.Readlink(filepath.Join(fdDir, ent.Name()))
			if err != nil {
				continue
			}
			inner, ok := strings.CutPrefix(target, "socket:[")
			if !ok {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(inner, "]"), 10, 64)
			if err != nil {
				continue
			}
			// The first process found holding a socket keeps it, as in
			// the kernel's seeding.
			if _, dup := f.index[ino]; !dup {
				f.index[ino] = p
			}
			if _, dup := f.fresh[ino]; !dup {
				f.fresh[ino] = p
			}
		}
	}
}

// candidates are the pids to look at: the --pid targets, or every process.
func (f *Finder) candidates() []uint32 {
	if len(f.Filters.PIDs) > 0 {
		return f.Filters.PIDs
	}
	ents, err := os.ReadDir(f.ProcRoot)
	if err != nil {
		return nil
	}
	var pids []uint32
	for _, ent := range ents {
		if pid, err := strconv.ParseUint(ent.Name(), 10, 32); err == nil {
			pids = append(pids, uint32(pid))
		}
	}
	return pids
}

// selected reads a process's name and cgroup and applies the process
// filters to them, as the kernel's match_process does.
func (f *Finder) selected(pid uint32) (Proc, bool) {
	p := Proc{PID: pid}
	dir := filepath.Join(f.ProcRoot, strconv.FormatUint(uint64(pid), 10))
	comm, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		return p, false
	}
	p.Comm = strings.TrimSuffix(string(comm), "\n")
	if f.CgroupRoot != "" {
		p.Cgroup = workload.ProcCgroupID(f.ProcRoot, f.CgroupRoot, pid)
	}
	if len(f.Filters.PIDs) > 0 && !slices.Contains(f.Filters.PIDs, pid) {
		return p, false
	}
	if len(f.Filters.Comms) > 0 && !slices.Contains(f.Filters.Comms, p.Comm) {
		return p, false
	}
	if len(f.Filters.Cgroups) > 0 && !slices.Contains(f.Filters.Cgroups, p.Cgroup) {
		return p, false
	}
	return p, true
}
