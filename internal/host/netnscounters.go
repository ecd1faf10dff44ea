package host

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/netstat"
	"github.com/sendtrace/sendtrace/internal/session"
)

// NetnsCounters is a sink that reads the traced network namespaces' own
// counters (nstat's MIBs) as the session begins and just before the
// programs are detached, so that both readings bound exactly what the
// tracer saw. Traced namespaces are those of the --pid targets, or
// sendtrace's own without --pid, and every namespace an event comes
// from. Without --pid, every namespace on the host is read at the start,
// because which of them will have events is not known yet.
//
// A traced namespace's counter files stay open until the end: an open
// file keeps showing its namespace after the process it was opened
// through has exited, which a short-lived client does. The kernel keeps
// such a namespace (and its devices) until the recording ends.
type NetnsCounters struct {
	warn io.Writer

	mu      sync.Mutex
	traced  map[uint64]*tracedNetns
	order   []uint64
	atStart map[uint64]startReading // without --pid: every namespace
	out     []session.NetnsCounters
	begun   bool // Begin has read the namespaces traced from the start
	stopped bool
	warned  bool
}

// tracedNetns is one namespace whose counters go into the recording.
type tracedNetns struct {
	out   session.NetnsCounters
	files *netstat.Files
	start netstat.Counters
}

// startReading is a namespace's counters at the start, and how to reach
// it again.
type startReading struct {
	route    netnsRoute
	counters netstat.Counters
	at       time.Time
}

// netnsRoute reaches a namespace through a process in it, or through
// its name in /run/netns when no process is in it.
type netnsRoute struct {
	pid  uint32
	path string // /run/netns/NAME
}

// NewNetnsCounters returns the sink; warnings go to warn.
func NewNetnsCounters(warn io.Writer) *NetnsCounters {
	return &NetnsCounters{warn: warn, traced: map[uint64]*tracedNetns{}, atStart: map[uint64]startReading{}}
}

// Begin reads the namespaces traced from the start.
func (n *NetnsCounters) Begin(d *session.Description) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	defer func() { n.begun = true }()
	if len(d.Filters.PIDs) > 0 {
		for _, pid := range d.Filters.PIDs {
			if ino := NetnsInode(pid); ino != 0 {
				n.track(ino, []netnsRoute{{pid: pid}}, []string{readComm(pid)}, nil)
			}
		}
		return nil
	}
	// Sendtrace's own namespace is traced (its files stay open), and
	// read first: the programs are already attached, and what happens
	// between attaching and this reading counts on sendtrace's side only.
	// The others are read once, and opened again if events come from them.
	own := nsInode("/proc/self/ns/net")
	if own != 0 {
		n.track(own, []netnsRoute{{}}, []string{""}, nil)
	}
	for ino, r := range scanNetns() {
		if ino == own {
			continue
		}
		if c, err := r.read(ino); err == nil {
			n.atStart[ino] = startReading{route: r, counters: c, at: time.Now()}
		}
	}
	return nil
}

// Event starts tracking the namespace of an event seen for the first time.
func (n *NetnsCounters) Event(e *events.Event) error {
	if e.Netns == 0 {
		return nil
	}
	ino := uint64(e.Netns)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped || n.traced[ino] != nil {
		return nil
	}
	s, known := n.atStart[ino]
	delete(n.atStart, ino)
	var start *startReading
	if known {
		start = &s
	}
	// The event's owner is the likeliest to still be in the namespace;
	// the way found at the start is the other.
	var routes []netnsRoute
	var comms []string
	if e.OwnerKnown && e.PID != 0 {
		routes, comms = append(routes, netnsRoute{pid: e.PID}), append(comms, e.Comm)
	}
	if known {
		routes, comms = append(routes, s.route), append(comms, readComm(s.route.pid))
	}
	if len(routes) == 0 {
		n.order = append(n.order, ino)
		n.traced[ino] = &tracedNetns{out: session.NetnsCounters{Netns: session.Netns{Inode: ino,
			Note: "counters not read: no process was known to be in it when its first event arrived"}, From: "first event"}}
		return nil
	}
	n.track(ino, routes, comms, start)
	return nil
}

// track opens a namespace's counter files through the first of routes
// that works (comms names their processes) and takes its first reading,
// or keeps the one taken at the start.
func (n *NetnsCounters) track(ino uint64, routes []netnsRoute, comms []string, start *startReading) {
	if n.traced[ino] != nil {
		return
	}
	t := &tracedNetns{out: session.NetnsCounters{Netns: session.Netns{Inode: ino}, From: "start"}}
	n.traced[ino] = t
	n.order = append(n.order, ino)
	var files *netstat.Files
	var err error
	for i, r := range routes {
		var note string
		if files, note, err = r.open(ino); err == nil {
			t.out.Netns.PID, t.out.Comm, t.out.Netns.Note = r.pid, comms[i], note
			break
		}
	}
	if err != nil {
		// Every process known to be in it has exited or left: any other
		// still in it, or its name in /run/netns, reaches it.
		var skip []uint32
		for _, r := range routes {
			skip = append(skip, r.pid)
		}
		if r, ok := findNetnsRoute(ino, skip...); ok {
			var note string
			if files, note, err = r.open(ino); err == nil {
				t.out.Netns.PID, t.out.Comm, t.out.Netns.Note = r.pid, readComm(r.pid), note
			}
		}
	}
	if err != nil {
		t.out.Netns.Note = "counters not read: " + err.Error()
		if !n.warned && n.warn != nil {
			n.warned = true
			fmt.Fprintf(n.warn, "sendtrace: recording without the counters of %s: %s\n", session.NetnsName(ino), format.Printable(err.Error()))
		}
		return
	}
	t.files = files
	if start != nil {
		t.start, t.out.Start = start.counters, start.at
		return
	}
	if n.begun {
		t.out.From = "first event"
	}
	t.out.Start = time.Now()
	if t.start, err = files.Read(); err != nil {
		t.out.Netns.Note = "counters not read: " + err.Error()
		files.Close()
		t.files = nil
	}
}

// Stopping takes the last reading while the programs are still
// attached.
func (n *NetnsCounters) Stopping() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	n.stopped = true
	n.out = []session.NetnsCounters{}
	for _, ino := range n.order {
		t := n.traced[ino]
		if t.files != nil {
			c, err := t.files.Read()
			t.out.End = time.Now()
			if err != nil {
				t.out.Netns.Note = "counters not read at the end: " + err.Error()
			} else {
				t.out.Delta = netstat.Moved(t.start, c)
			}
			t.files.Close()
			t.files = nil
		}
		n.out = append(n.out, t.out)
	}
	n.atStart = nil
}

// End hands the namespaces' counters to the sinks after it (the
// recorder's footer).
func (n *NetnsCounters) End(end *session.End) error {
	n.Stopping()
	end.Counters = append(end.Counters, n.out...)
	return nil
}

func (r netnsRoute) open(ino uint64) (f *netstat.Files, note string, err error) {
	if r.path == "" {
		dir := "/proc/self/net"
		if r.pid != 0 {
			dir = "/proc/" + strconv.FormatUint(uint64(r.pid), 10) + "/net"
		}
		if f, err = netstat.Open(dir); err != nil {
			return nil, "", err
		}
		// The process may have left the namespace, or exited and its
		// pid been reused, between finding it and opening its files.
		var now uint64
		if r.pid == 0 {
			now = nsInode("/proc/self/ns/net")
		} else {
			now = NetnsInode(r.pid)
		}
		switch {
		case now == 0 && r.pid != 0:
			note = fmt.Sprintf("read through pid %d without checking that it was still in %s: /proc/%d/ns/net of another user's process needs CAP_SYS_PTRACE",
				r.pid, session.NetnsName(ino), r.pid)
		case now != ino:
			f.Close()
			return nil, "", fmt.Errorf("pid %d left %s before its counters were opened", r.pid, session.NetnsName(ino))
		}
		return f, note, nil
	}
	target, err := os.Open(r.path)
	if err != nil {
		return nil, "", err
	}
	defer target.Close()
	var inside error
	err = inNetns(target, func() {
		if nsInode("/proc/thread-self/ns/net") != ino {
			inside = fmt.Errorf("%s is no longer %s", r.path, session.NetnsName(ino))
			return
		}
		f, inside = netstat.Open("/proc/thread-self/net")
	})
	if err == nil {
		err = inside
	}
	return f, "", err
}

func (r netnsRoute) read(ino uint64) (netstat.Counters, error) {
	f, _, err := r.open(ino)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Read()
}

// scanNetns finds every network namespace on the host: through a
// process in it, or through its name in /run/netns (`ip netns add`)
// when it has no process.
func scanNetns() map[uint64]netnsRoute {
	out := map[uint64]netnsRoute{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.ParseUint(d.Name(), 10, 32)
		if err != nil {
			continue
		}
		if ino := NetnsInode(uint32(pid)); ino != 0 {
			if _, ok := out[ino]; !ok {
				out[ino] = netnsRoute{pid: uint32(pid)}
			}
		}
	}
	names, _ := filepath.Glob("/run/netns/*")
	for _, p := range names {
		if ino := nsInode(p); ino != 0 {
			if _, ok := out[ino]; !ok {
				out[ino] = netnsRoute{path: p}
			}
		}
	}
	return out
}

// findNetnsRoute finds a way into the network namespace ino other than
// the processes skip: another process in it, or its name in /run/netns.
func findNetnsRoute(ino uint64, skip ...uint32) (netnsRoute, bool) {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.ParseUint(d.Name(), 10, 32)
		if err != nil || slices.Contains(skip, uint32(pid)) {
			continue
		}
		if NetnsInode(uint32(pid)) == ino {
			return netnsRoute{pid: uint32(pid)}, true
		}
	}
	names, _ := filepath.Glob("/run/netns/*")
	for _, p := range names {
		if nsInode(p) == ino {
			return netnsRoute{path: p}, true
		}
	}
	return netnsRoute{}, false
}

func readComm(pid uint32) string {
	if pid == 0 {
		return ""
	}
	b, _ := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/comm")
	return strings.TrimSpace(string(b))
}
