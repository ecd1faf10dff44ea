package workload

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watcher learns every cgroup's path the moment the cgroup is made, from
// inotify on each directory of the cgroup v2 tree: a transient unit's
// cgroup, made for one short-lived process and removed as soon as that
// process exits, is often gone by the time its first event is read, and
// its id could then be mapped to no path (and its workload to no name).
//
// Lock order: watcher.mu before Resolver.mu. The directories are found
// (their ids read) under watcher.mu alone, so a walk of the whole tree
// under Resolver.mu never delays them.
type watcher struct {
	f   *os.File
	raw syscall.RawConn

	mu     sync.Mutex
	fd     int
	root   string
	dirs   map[int32]string // watch descriptor -> path below the root
	buf    []byte
	closed bool
}

// found is a cgroup's id and its path below the root.
type found struct {
	id   uint64
	path string
}

// watchMask: a cgroup made (mkdir) or renamed into a watched directory.
const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ONLYDIR

// Watch watches the cgroup v2 tree until Close, so that every cgroup made
// from now on is mapped to its path as it is made, while it exists, and
// named by that path even when it is gone before its first event is
// read. Where it can, it also reads the kernel's cgroup:cgroup_mkdir
// tracepoint, which keeps each cgroup's id and path for sendtrace from
// the moment it is made, however late sendtrace reads them. It fails when inotify is not available or the tree needs more
// watches than fs.inotify.max_user_watches allows; the resolver then
// finds cgroups only while they exist, as it does without Watch.
func (r *Resolver) Watch() error {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return fmt.Errorf("inotify: %w", err)
	}
	w := &watcher{f: f, raw: raw, fd: fd, root: r.cfg.CgroupRoot,
		dirs: make(map[int32]string), buf: make([]byte, 64<<10)}
	w.mu.Lock()
	defer w.mu.Unlock()
	all, err := w.watchTree("/", nil)
	if err != nil {
		f.Close()
		return err
	}
	r.mu.Lock()
	r.learn(all, nil)
	r.w = w
	r.mu.Unlock()
	go r.watchLoop(w)
	// Where the kernel's cgroup_mkdir tracepoint can be read, the path
	// of every cgroup made is kept for sendtrace by the kernel itself:
	// inotify then only fills in what the tracepoint's rings lost.
	var fs unix.Statfs_t
	how, why := "inotify", error(nil)
	if unix.Statfs(r.cfg.CgroupRoot, &fs) != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		// Not a cgroup v2 mount (a test's tree): its ids are no cgroup's.
		why = fmt.Errorf("%s is not a cgroup v2 mount", r.cfg.CgroupRoot)
	} else if r.cfg.NoMkdirTrace {
		why = errors.New("disabled by --disable-hook")
	} else if t, err := openMkdirTrace(r.cfg.HostRoot); err != nil {
		why = err
	} else {
		t.looping = true
		r.mu.Lock()
		r.tr = t
		r.mu.Unlock()
		go r.traceLoop(t)
		how = MkdirHook
	}
	r.mu.Lock()
	r.newNames, r.mkdirErr = how, why
	r.mu.Unlock()
	return nil
}

// MkdirHook is the kernel's tracepoint that names each cgroup as it is
// made; --disable-hook with a prefix of it leaves it unread.
const MkdirHook = "tracepoint/cgroup_mkdir"

// NewCgroups says how cgroups made since Watch are mapped to their
// paths: MkdirHook, where the kernel keeps each one's id and path for
// sendtrace however late they are read; "inotify", where a cgroup
// removed before its inotify event is read is named by its process only,
// with why the tracepoint was not read; "" without Watch.
func (r *Resolver) NewCgroups() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.newNames, r.mkdirErr
}

// Close stops watching the cgroup tree.
func (r *Resolver) Close() error {
	r.mu.Lock()
	w, t := r.w, r.tr
	r.w, r.tr = nil, nil
	r.mu.Unlock()
	if t != nil {
		t.close()
	}
	if w == nil {
		return nil
	}
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return w.f.Close()
}

func (r *Resolver) watchLoop(w *watcher) {
	for {
		var closed bool
		err := w.raw.Read(func(uintptr) bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			if closed = w.closed; closed {
				return true
			}
			// Read until nothing is left, then wait.
			return r.drainLocked(w) != nil
		})
		if err != nil || closed {
			return
		}
	}
}

// drain maps the cgroups made since inotify was last read. r.mu is held,
// and is released meanwhile to keep the lock order.
func (r *Resolver) drain(w *watcher) {
	t := r.tr
	r.mu.Unlock()
	if t != nil {
		t.mu.Lock()
		if !t.closed {
			if all := t.drain(nil); len(all) > 0 {
				r.mu.Lock()
				r.learn(all, nil)
				r.mu.Unlock()
			}
		}
		t.mu.Unlock()
	}
	w.mu.Lock()
	if !w.closed {
		_ = r.drainLocked(w)
	}
	w.mu.Unlock()
	r.mu.Lock()
}

// drainLocked reads every inotify event queued and maps the cgroups made.
// It returns an error only when the inotify descriptor fails. w.mu is
// held, r.mu is not.
func (r *Resolver) drainLocked(w *watcher) error {
	var all []found
	var made []string
	var err error
	for {
		var n int
		n, err = unix.Read(w.fd, w.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
			nameAt := off + unix.SizeofInotifyEvent
			off = nameAt + int(ev.Len)
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				// Events were lost: watch and map the whole tree again.
				all, _ = w.watchTree("/", all)
			case ev.Mask&unix.IN_IGNORED != 0:
				delete(w.dirs, ev.Wd)
			case ev.Mask&unix.IN_ISDIR != 0 && ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
				parent, ok := w.dirs[ev.Wd]
				if !ok || off > n {
					continue
				}
				p := path.Join(parent, unix.ByteSliceToString(w.buf[nameAt:off]))
				all, _ = w.watchTree(p, all)
				made = append(made, p)
			}
		}
	}
	if len(all) > 0 {
		r.mu.Lock()
		r.learn(all, made)
		r.mu.Unlock()
	}
	if errors.Is(err, unix.EAGAIN) {
		return nil
	}
	return err
}

// learn maps the cgroups found to their paths. A container's runtime
// state may already say its pod: the containers just made are named now,
// while that state is there (without a pod yet, a container is named on
// its first event). r.mu is held.
func (r *Resolver) learn(all []found, made []string) {
	now := time.Now()
	for _, c := range all {
		r.remember(c.id, c.path, now)
	}
	for _, p := range made {
		if c := FromPath(p); c != nil && c.ID != "" {
			if a, _ := annotations(r.cfg.RunDir, r.cfg.HostRoot, c.ID); a != nil {
				if named := withPod(c, a); named != c {
					r.byPath[p] = named
				}
			}
		}
	}
}

// watchTree watches the directory rel (below the root) and every one
// below it, and appends each one's id and path to all. Each directory is
// found (its id read) first, then watched, then read: a cgroup made below
// it meanwhile is either listed or reported. w.mu is held.
func (w *watcher) watchTree(rel string, all []found) ([]found, error) {
	err := filepath.WalkDir(filepath.Join(w.root, rel), func(full string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // gone already
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		p, _ := filepath.Rel(w.root, full)
		p = filepath.Clean("/" + p)
		all = append(all, found{st.Ino, p})
		wd, err := unix.InotifyAddWatch(w.fd, full, watchMask)
		switch {
		case err == nil:
			w.dirs[int32(wd)] = p
		case errors.Is(err, unix.ENOSPC):
			return fmt.Errorf("watch the cgroup tree %s: more cgroups than fs.inotify.max_user_watches allows: %w", w.root, err)
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
			return filepath.SkipDir // removed meanwhile
		default:
			return fmt.Errorf("watch cgroup %s: %w", full, err)
		}
		return nil
	})
	return all, err
}
