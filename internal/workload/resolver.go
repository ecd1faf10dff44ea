//go:build linux

package workload

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

// Config says where the host's cgroups and runtime state are. The zero
// value is right on the host itself; inside a container, point both at
// the host's mounts.
type Config struct {
	CgroupRoot string // cgroup v2 mount; "" finds it in /proc/self/mountinfo
	RunDir     string // the host's /run, where runtimes keep state; "" is /run
	// HostRoot is where the host's / is ("" on the host itself): the
	// runtimes' state names bundles by their paths on the host.
	HostRoot string
	// Warn receives, once, why some names are less than they could be
	// (a runtime's state that this user cannot read).
	Warn func(string)
	// NoMkdirTrace leaves the cgroup_mkdir tracepoint unread, so that
	// inotify alone maps new cgroups (--disable-hook
	// tracepoint/cgroup_mkdir), to test that fallback.
	NoMkdirTrace bool
}

// Resolver names the workloads of cgroups and processes. It caches every
// answer per cgroup, so the cost is paid once per cgroup, never per event.
type Resolver struct {
	cfg Config

	mu       sync.Mutex
	paths    map[uint64]string           // cgroup id -> path below CgroupRoot
	found    map[uint64]time.Time        // cgroup id -> when it was last found
	byPath   map[string]*events.Workload // nil value: not a container or unit
	procs    map[string]*events.Workload // process-named workloads by comm
	lastWalk time.Time
	pruned   time.Time
	warned   bool
	w        *watcher    // nil until Watch
	tr       *mkdirTrace // nil until Watch, or without the tracepoint
	newNames string      // how Watch maps new cgroups: MkdirHook, "inotify" or ""
	mkdirErr error       // why the tracepoint is not read, with "inotify"
	procRoot string      // /proc; a test's fixture
}

// A cgroup's name is kept keepGone after the cgroup was last found, for
// events that were read after it went; the tree is walked every pruneEvery
// to forget the cgroups gone longer, so a node where containers come and
// go for weeks keeps the names of the living.
const (
	pruneEvery = time.Minute
	keepGone   = 10 * time.Minute
)

// walkEvery bounds how often a cgroup id that is not yet known makes the
// resolver walk the whole cgroup tree: often enough to name a container
// that started a moment ago, rarely enough that events of cgroups already
// gone cannot keep it walking.
const walkEvery = 100 * time.Millisecond

// NewResolver finds the cgroup v2 mount and returns a resolver.
func NewResolver(cfg Config) (*Resolver, error) {
	if cfg.CgroupRoot == "" {
		root, err := CgroupV2Mount()
		if err != nil {
			return nil, err
		}
		cfg.CgroupRoot = root
	}
	if cfg.RunDir == "" {
		cfg.RunDir = "/run"
	}
	return &Resolver{
		cfg:      cfg,
		procRoot: "/proc",
		paths:    make(map[uint64]string),
		found:    make(map[uint64]time.Time),
		byPath:   make(map[string]*events.Workload),
		procs:    make(map[string]*events.Workload),
	}, nil
}

// CgroupRoot is the cgroup v2 mount the resolver reads.
func (r *Resolver) CgroupRoot() string { return r.cfg.CgroupRoot }

// CgroupV2Mount finds where cgroup v2 is mounted (/sys/fs/cgroup, or
// /sys/fs/cgroup/unified beside v1 controllers).
func CgroupV2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find the cgroup v2 mount: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && strings.HasPrefix(post, "cgroup2 ") && len(fields) >= 5 {
			return fields[4], nil
		}
	}
	return "", errors.New("no cgroup v2 mount in /proc/self/mountinfo: workload names need cgroup v2 (mount -t cgroup2 none /sys/fs/cgroup)")
}

// Enrich sets the event's workload: its cgroup's container or unit, or
// else its process. It is the pipeline stage.
func (r *Resolver) Enrich(e *events.Event) {
	w := r.Cgroup(e.Cgroup, e.PID)
	if w == nil && e.Comm != "" {
		w = r.process(e.Comm)
	}
	e.Workload = w
}

// Cgroup names the container or unit of a cgroup id (pid, when not zero,
// is a process that was in it, to find it without walking the tree). It
// returns nil for cgroups that are neither.
func (r *Resolver) Cgroup(id uint64, pid uint32) *events.Workload {
	if id == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.pruned) >= pruneEvery {
		r.prune(now)
	}
	p, ok := r.paths[id]
	if w := r.w; !ok && w != nil {
		// The cgroup may be one made a moment ago, whose inotify event
		// is still queued.
		r.drain(w)
		p, ok = r.paths[id]
	}
	if !ok {
		if p, ok = r.pidPath(pid, id); !ok {
			p, ok = r.walkFor(id)
		}
		if !ok {
			return nil
		}
	}
	return r.path(p)
}

// PID names a running process's workload, from /proc/PID/cgroup and
// /proc/PID/comm (both world-readable). ok is false when the process is
// gone.
func (r *Resolver) PID(pid uint32) (w *events.Workload, ok bool) {
	p, err := procCgroupIn(r.procRoot, pid)
	if err != nil {
		return nil, false
	}
	r.mu.Lock()
	if p, ok = r.hostPath(p); ok {
		w = r.path(p)
	}
	r.mu.Unlock()
	if w != nil {
		return w, true
	}
	comm, err := os.ReadFile(r.procRoot + "/" + strconv.FormatUint(uint64(pid), 10) + "/comm")
	if err != nil {
		return nil, false
	}
	return r.process(strings.TrimSpace(string(comm))), true
}

func (r *Resolver) process(comm string) *events.Workload {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.procs[comm]
	if !ok {
		w = (&events.Workload{Kind: events.WorkloadProcess, Name: comm}).Finish()
		r.procs[comm] = w
	}
	return w
}

// path names the workload of a cgroup path, once per path. r.mu is held.
func (r *Resolver) path(p string) *events.Workload {
	if w, ok := r.byPath[p]; ok {
		return w
	}
	w := FromPath(p)
	if w != nil && w.ID != "" {
		a, err := annotations(r.cfg.RunDir, r.cfg.HostRoot, w.ID)
		// Only a pod's container loses a name to unreadable state: a
		// plain Docker or Podman container is named by its id either way.
		if err != nil && inPod(p) {
			r.warn(err)
		}
		w = withPod(w, a)
	}
	r.byPath[p] = w
	return w
}

// inPod says whether a cgroup path is a Kubernetes pod's (kubelet's
// kubepods tree, with the cgroupfs or the systemd driver).
func inPod(p string) bool { return strings.Contains(p, "kubepods") }

func (r *Resolver) warn(err error) {
	if r.warned || r.cfg.Warn == nil {
		return
	}
	r.warned = true
	if errors.Is(err, errNoBundle) {
		where := "the host's /run"
		if r.cfg.HostRoot != "" && r.cfg.HostRoot != "/" {
			where = "--host-root " + r.cfg.HostRoot + ": mount the directory that holds it there"
		}
		r.cfg.Warn(fmt.Sprintf("workload names: %v: Kubernetes pod and container names come from the bundle, which is not under %s; showing container ids instead", err, where))
		return
	}
	r.cfg.Warn(fmt.Sprintf("workload names: %v: Kubernetes pod and container names need read access to the container runtime's state (grant CAP_DAC_READ_SEARCH); showing container ids instead", err))
}

// pidPath finds a cgroup through a process that was in it. r.mu is held.
func (r *Resolver) pidPath(pid uint32, id uint64) (string, bool) {
	if pid == 0 {
		return "", false
	}
	p, err := procCgroupIn(r.procRoot, pid)
	if err != nil {
		return "", false
	}
	if p, ok := r.hostPath(p); !ok || inode(filepath.Join(r.cfg.CgroupRoot, p)) != id {
		return "", false
	}
	r.remember(id, p, time.Now())
	return p, true
}

// hostPath turns a path from /proc/PID/cgroup into one below CgroupRoot.
// Read from a private cgroup namespace (a container's), a cgroup outside
// it reads as a path from the namespace's root, /../../kubepods/...: it
// is then the one known cgroup whose path ends as that one does after its
// "..", once the tree has been walked if none is known yet. r.mu is held.
func (r *Resolver) hostPath(p string) (string, bool) {
	if p != "/.." && !strings.HasPrefix(p, "/../") {
		return p, true
	}
	rest := p
	for rest == "/.." || strings.HasPrefix(rest, "/../") {
		rest = strings.TrimPrefix(rest, "/..")
	}
	if rest == "" {
		return "", false // an ancestor of the namespace's root: not one cgroup's
	}
	find := func() (string, bool) {
		var found string
		n := 0
		for _, q := range r.paths {
			if strings.HasSuffix(q, rest) && found != q {
				found = q
				n++
			}
		}
		return found, n == 1
	}
	if q, ok := find(); ok {
		return q, true
	}
	if time.Since(r.lastWalk) < walkEvery {
		return "", false
	}
	r.lastWalk = time.Now()
	r.walk(func(id uint64, q string) { r.remember(id, q, r.lastWalk) })
	return find()
}

// remember maps a cgroup id to its path. r.mu is held.
func (r *Resolver) remember(id uint64, p string, now time.Time) {
	r.paths[id] = p
	r.found[id] = now
}

// prune walks the tree and forgets the cgroups not found for keepGone.
// r.mu is held.
func (r *Resolver) prune(now time.Time) {
	r.pruned = now
	r.walk(func(id uint64, p string) { r.remember(id, p, now) })
	for id, p := range r.paths {
		if now.Sub(r.found[id]) > keepGone {
			delete(r.paths, id)
			delete(r.found, id)
			delete(r.byPath, p)
		}
	}
}

// walkFor maps every cgroup below the root to its id, at most once per
// walkEvery. r.mu is held.
func (r *Resolver) walkFor(id uint64) (string, bool) {
	if time.Since(r.lastWalk) < walkEvery {
		return "", false
	}
	r.lastWalk = time.Now()
	r.walk(func(ino uint64, p string) { r.remember(ino, p, r.lastWalk) })
	p, ok := r.paths[id]
	return p, ok
}

func (r *Resolver) walk(visit func(id uint64, p string)) {
	root := r.cfg.CgroupRoot
	_ = filepath.WalkDir(root, func(full string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		rel, _ := filepath.Rel(root, full)
		visit(st.Ino, filepath.Clean("/"+rel))
		return nil
	})
}

// Prime names every cgroup that exists now, containers' pods included, so
// that a container that exits (and whose runtime state goes with it)
// before its first event is read is still named.
func (r *Resolver) Prime() {
	r.Matching(func(*events.Workload) bool { return false })
}

// Matching lists the ids of every cgroup whose workload match accepts,
// for filters that select workloads by name.
func (r *Resolver) Matching(match func(*events.Workload) bool) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []uint64
	now := time.Now()
	r.walk(func(ino uint64, p string) {
		r.remember(ino, p, now)
		if w := r.path(p); w != nil && match(w) {
			ids = append(ids, ino)
		}
	})
	return ids
}

// ProcCgroupID is the id (the directory's inode) of a process's cgroup v2
// under the mount cgroupRoot, reading procRoot (/proc); 0 when unknown.
func ProcCgroupID(procRoot, cgroupRoot string, pid uint32) uint64 {
	p, err := procCgroupIn(procRoot, pid)
	if err != nil {
		return 0
	}
	return inode(filepath.Join(cgroupRoot, p))
}

func procCgroupIn(procRoot string, pid uint32) (string, error) {
	b, err := os.ReadFile(procRoot + "/" + strconv.FormatUint(uint64(pid), 10) + "/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("no cgroup v2 line")
}

func inode(p string) uint64 {
	var st syscall.Stat_t
	if syscall.Stat(p, &st) != nil {
		return 0
	}
	return st.Ino
}
