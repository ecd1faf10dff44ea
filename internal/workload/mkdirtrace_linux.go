package workload

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mkdirTrace reads the kernel's cgroup:cgroup_mkdir tracepoint through
// perf, one ring per CPU: the kernel writes each cgroup's id and path
// into it as the cgroup is made, so the path of a cgroup that is gone
// before sendtrace could look is still there to read. inotify says only
// a directory's name, and its id must then be read while it exists,
// which an agent short of CPU can miss.
type mkdirTrace struct {
	mu      sync.Mutex
	rings   []*perfRing
	wake    int // eventfd that ends the reading loop, which closes it
	looping bool
	closed  bool
	// The fields of the tracepoint's raw record.
	root, id, path int
	lost           uint64 // records the rings could not hold
}

type perfRing struct {
	fd   int
	mem  []byte
	meta *unix.PerfEventMmapPage
	data []byte
}

const (
	ringPages = 8 // 32 KiB a CPU: some 200 cgroups made between two reads
	// dflHierarchy is cgroup v2's hierarchy id in the tracepoint's root.
	dflHierarchy = 0
)

// tracefsDirs are where tracefs is found mounted.
var tracefsDirs = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// openMkdirTrace opens the tracepoint on every CPU. It needs CAP_PERFMON
// and tracefs: the host's, below hostRoot (a container given the host's
// /sys/kernel/tracing, as the DaemonSet is), or this mount namespace's;
// where neither is mounted, a process with CAP_SYS_ADMIN mounts it in a
// mount namespace of its own thread, only to read the tracepoint's id and
// format.
func openMkdirTrace(hostRoot string) (*mkdirTrace, error) {
	id, format, err := readTracepoint(hostRoot, "cgroup", "cgroup_mkdir")
	if err != nil {
		return nil, err
	}
	t := &mkdirTrace{root: -1, id: -1, path: -1}
	for _, line := range strings.Split(format, "\n") {
		line = strings.TrimSpace(line)
		decl, rest, ok := strings.Cut(strings.TrimPrefix(line, "field:"), ";")
		if !ok || !strings.HasPrefix(line, "field:") {
			continue
		}
		off := -1
		for _, kv := range strings.Split(rest, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "offset:"); ok {
				off, _ = strconv.Atoi(v)
			}
		}
		switch f := strings.Fields(decl); {
		case len(f) == 2 && f[0] == "int" && f[1] == "root":
			t.root = off
		case len(f) == 2 && f[0] == "u64" && f[1] == "id":
			t.id = off
		case len(f) >= 2 && f[0] == "__data_loc" && f[len(f)-1] == "path":
			t.path = off
		}
	}
	if t.root < 0 || t.id < 0 || t.path < 0 {
		return nil, fmt.Errorf("cgroup:cgroup_mkdir has no root, id and path fields as this sendtrace knows them")
	}
	cpus, err := onlineCPUs()
	if err != nil {
		return nil, err
	}
	if t.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	size := (1 + ringPages) * os.Getpagesize()
	for _, cpu := range cpus {
		attr := unix.PerfEventAttr{
			Type:        unix.PERF_TYPE_TRACEPOINT,
			Config:      id,
			Size:        uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
			Sample_type: unix.PERF_SAMPLE_RAW,
			Sample:      1,
			Wakeup:      1,
		}
		fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err != nil {
			t.close()
			return nil, fmt.Errorf("perf_event_open cgroup:cgroup_mkdir on CPU %d: %w", cpu, err)
		}
		mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			unix.Close(fd)
			t.close()
			return nil, fmt.Errorf("mmap the perf ring of CPU %d: %w", cpu, err)
		}
		meta := (*unix.PerfEventMmapPage)(unsafe.Pointer(&mem[0]))
		off, n := meta.Data_offset, meta.Data_size
		if n == 0 {
			off, n = uint64(os.Getpagesize()), uint64(size-os.Getpagesize())
		}
		t.rings = append(t.rings, &perfRing{fd: fd, mem: mem, meta: meta, data: mem[off : off+n]})
	}
	return t, nil
}

// readTracepoint reads a tracepoint's id and format from tracefs, the
// host's below hostRoot first.
func readTracepoint(hostRoot, system, event string) (uint64, string, error) {
	read := func(dir string) (uint64, string, error) {
		d := filepath.Join(dir, "events", system, event)
		b, err := os.ReadFile(filepath.Join(d, "id"))
		if err != nil {
			return 0, "", err
		}
		id, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, "", err
		}
		f, err := os.ReadFile(filepath.Join(d, "format"))
		return id, string(f), err
	}
	var first error
	dirs := tracefsDirs
	if hostRoot != "" && hostRoot != "/" {
		dirs = append([]string{filepath.Join(hostRoot, tracefsDirs[0])}, dirs...)
	}
	for _, dir := range dirs {
		id, f, err := read(dir)
		if err == nil {
			return id, f, nil
		}
		if first == nil {
			first = err
		}
	}
	// Not mounted: mount it on a thread in a mount namespace of its own,
	// which the thread takes with it when it exits.
	type result struct {
		id  uint64
		f   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with its namespace
		var res result
		if res.err = unix.Unshare(unix.CLONE_NEWNS); res.err == nil {
			if res.err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); res.err == nil {
				if res.err = unix.Mount("tracefs", tracefsDirs[0], "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); res.err == nil {
					res.id, res.f, res.err = read(tracefsDirs[0])
				}
			}
		}
		done <- res
	}()
	res := <-done
	if res.err != nil {
		return 0, "", fmt.Errorf("tracepoint %s:%s: %w; mounting tracefs: %v", system, event, first, res.err)
	}
	return res.id, res.f, nil
}

// onlineCPUs lists the CPUs in /sys/devices/system/cpu/online (0-3,6).
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	var cpus []int
	sc := bufio.NewScanner(strings.NewReader(strings.TrimSpace(string(b))))
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		for i, c := range data {
			if c == ',' {
				return i + 1, data[:i], nil
			}
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		lo, hi, isRange := strings.Cut(sc.Text(), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("online CPUs %q: %w", b, err)
		}
		z := a
		if isRange {
			if z, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("online CPUs %q: %w", b, err)
			}
		}
		for c := a; c <= z; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// drain reads every record the rings hold and appends the v2 cgroups
// made to all. t.mu is held.
func (t *mkdirTrace) drain(all []found) []found {
	for _, r := range t.rings {
		head := atomic.LoadUint64(&r.meta.Data_head)
		tail := r.meta.Data_tail
		size := uint64(len(r.data))
		var hdr [8]byte
		for tail < head {
			copyRing(hdr[:], r.data, tail%size)
			typ := binary.NativeEndian.Uint32(hdr[0:])
			n := uint64(binary.NativeEndian.Uint16(hdr[6:]))
			if n < 8 || n > head-tail {
				tail = head // cannot happen: resync
				break
			}
			rec := make([]byte, n-8)
			copyRing(rec, r.data, (tail+8)%size)
			tail += n
			switch typ {
			case unix.PERF_RECORD_SAMPLE:
				if c, ok := t.parse(rec); ok {
					all = append(all, c)
				}
			case unix.PERF_RECORD_LOST:
				if len(rec) >= 16 {
					t.lost += binary.NativeEndian.Uint64(rec[8:])
				}
			}
		}
		atomic.StoreUint64(&r.meta.Data_tail, tail)
	}
	return all
}

// parse reads a sample: a u32 size, then the tracepoint's raw record.
func (t *mkdirTrace) parse(rec []byte) (found, bool) {
	if len(rec) < 4 {
		return found{}, false
	}
	n := int(binary.NativeEndian.Uint32(rec))
	raw := rec[4:]
	if n > len(raw) || t.root+4 > n || t.id+8 > n || t.path+4 > n {
		return found{}, false
	}
	raw = raw[:n]
	if int32(binary.NativeEndian.Uint32(raw[t.root:])) != dflHierarchy {
		return found{}, false // a cgroup v1 hierarchy's
	}
	loc := binary.NativeEndian.Uint32(raw[t.path:])
	off, l := int(loc&0xffff), int(loc>>16)
	if off+l > n || l == 0 {
		return found{}, false
	}
	p := strings.TrimRight(string(raw[off:off+l]), "\x00")
	if !strings.HasPrefix(p, "/") {
		return found{}, false
	}
	return found{id: binary.NativeEndian.Uint64(raw[t.id:]), path: p}, true
}

func copyRing(dst, ring []byte, at uint64) {
	n := copy(dst, ring[at:])
	copy(dst[n:], ring)
}

// traceLoop reads the rings as records come, until close.
func (r *Resolver) traceLoop(t *mkdirTrace) {
	fds := make([]unix.PollFd, 0, len(t.rings)+1)
	for _, ring := range t.rings {
		fds = append(fds, unix.PollFd{Fd: int32(ring.fd), Events: unix.POLLIN})
	}
	fds = append(fds, unix.PollFd{Fd: int32(t.wake), Events: unix.POLLIN})
	defer unix.Close(t.wake)
	for {
		_, err := unix.Poll(fds, -1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return
		}
		all := t.drain(nil)
		if len(all) > 0 {
			r.mu.Lock()
			r.learn(all, nil)
			r.mu.Unlock()
		}
		t.mu.Unlock()
	}
}

// close ends the loop and releases the rings.
func (t *mkdirTrace) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	if t.wake > 0 {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(t.wake, one[:])
	}
	for _, r := range t.rings {
		_ = unix.Munmap(r.mem)
		unix.Close(r.fd)
	}
	t.rings = nil
	if !t.looping && t.wake > 0 {
		unix.Close(t.wake)
	}
}
