package sockowner

import (
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/sendtrace/sendtrace/internal/session"
)

// inodeOf is the inode of a socket this process holds.
func inodeOf(t *testing.T, c syscall.Conn) uint64 {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return st.Ino
}

// A socket this process holds is found under --pid of this process, and
// not under another pid's or another command name's filter; a socket
// closed after the first scan is still this process's.
func TestFind(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ino := inodeOf(t, ln.(*net.TCPListener))
	now := uint64(1)
	clock := func() uint64 { now++; return now }
	self := uint32(os.Getpid())
	f := &Finder{ProcRoot: "/proc", Filters: session.Filters{PIDs: []uint32{self}}, Now: clock}
	p, ok := f.Find(ino, now)
	if !ok || p.PID != self || p.Comm == "" {
		t.Fatalf("Find(own listener) = %+v, %v; want pid %d with its comm", p, ok, self)
	}
	ln.Close()
	if _, ok := f.Find(ino, now+100); !ok {
		t.Errorf("a socket closed since the scan that found it is no longer this process's")
	}
	other := &Finder{ProcRoot: "/proc", Filters: session.Filters{Comms: []string{"no-such-comm"}}, Now: clock}
	if p, ok := other.Find(ino, now); ok {
		t.Errorf("--comm no-such-comm found %+v", p)
	}
	// An index built after the event is not scanned again for a miss.
	scans := f.Scans
	if _, ok := f.Find(ino+1<<40, 0); ok || f.Scans != scans {
		t.Errorf("a miss older than the index scanned again (%d scans, was %d) or was found", f.Scans, scans)
	}
}

// A listener this process holds is found with its namespace and port.
func TestListeners(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	self := uint32(os.Getpid())
	var n uint64
	f := &Finder{ProcRoot: "/proc", Filters: session.Filters{PIDs: []uint32{self}}, Now: func() uint64 { n++; return n }}
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	for _, l := range f.Listeners() {
		if l.Port == port {
			if l.Netns != uint32(st.Ino) || l.Proc.PID != self || l.Ambiguous {
				t.Errorf("listener on port %d: %+v; want netns %d, pid %d, not ambiguous", port, l, st.Ino, self)
			}
			return
		}
	}
	t.Errorf("the listener on port %d was not found", port)
}
