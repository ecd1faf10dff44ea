package loader

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/host"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

func syscallHook(t *testing.T, p *Programs) session.Hook {
	t.Helper()
	for _, h := range p.Plan {
		if h.Layer == session.LayerSyscallExit {
			return h
		}
	}
	t.Fatal("no syscall-exit layer in the plan")
	return session.Hook{}
}

// TestSyscallProbeSeenAndSilent loads as a session does, with this
// process as sendtrace itself (whose sends are never traced, the first
// filter the program applies), and checks that the probe was seen at the
// first attach, and that probing emits nothing and counts nothing.
func TestSyscallProbeSeenAndSilent(t *testing.T) {
	testutil.RequireRoot(t)
	p, err := Load(Config{SelfPID: uint32(os.Getpid())})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	defer p.Close()
	if pr := p.SyscallProbe; !pr.Ran || !pr.Seen || pr.Attempts != 1 || pr.Err != nil {
		t.Fatalf("probe %+v (%s), want seen at the first attach", pr, pr)
	}
	if h := syscallHook(t, p); h.Status() != session.StatusOn || !strings.Contains(h.Why, "liveness probe was seen") {
		t.Errorf("plan entry %+v, want on and the probe named", h)
	}
	rd, err := ringbuf.NewReader(p.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	totals, err := p.Totals()
	if err != nil {
		t.Fatal(err)
	}
	counters, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	// Again, now that the ring buffer is read: the probe's sends must
	// not reach it.
	for i := 0; i < 5; i++ {
		seen, calls, err := p.probeOnce()
		if err != nil || !seen || calls != 1 {
			t.Fatalf("probe %d: seen %v after %d calls, err %v", i, seen, calls, err)
		}
	}
	rd.SetDeadline(time.Now().Add(300 * time.Millisecond))
	dec := NewDecoder(host.BootWall(), 250)
	for {
		rec, err := rd.Read()
		if err != nil {
			break
		}
		var e events.Event
		if err := dec.Decode(rec.RawSample, &e); err != nil {
			t.Fatal(err)
		}
		if e.PID == uint32(os.Getpid()) {
			t.Errorf("the probe emitted an event: %+v", e)
		}
	}
	after, err := p.Totals()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range after.ByKey {
		if k.PID == uint32(os.Getpid()) && v != totals.ByKey[k] {
			t.Errorf("the probe changed the totals of %+v: %+v, then %+v", k, totals.ByKey[k], v)
		}
	}
	// Unowned counts the async events (retransmits, resets) of sockets
	// nobody traced owns, anywhere on the machine: other traffic moves it.
	// The probe could move any of the others.
	c, err := p.Counters()
	c.Unowned, counters.Unowned = 0, 0
	if err != nil || c != counters {
		t.Errorf("the probe changed the counters: %+v, then %+v (%v)", counters, c, err)
	}
}

// TestSyscallProbeDetached closes the sys_exit program's link, a program
// that then really never runs: the probe must say so, a re-attach must
// revive it, and a layer that stays dead must be given up for the
// socket layer, which then reports a failed send on its own.
func TestSyscallProbeDetached(t *testing.T) {
	testutil.RequireRoot(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			time.Sleep(3 * time.Second)
			c.Close()
		}
	}()
	dst := ln.Addr().(*net.TCPAddr).AddrPort()
	cfg := Config{SelfPID: 1, Options: session.Options{Filters: session.Filters{Ports: []uint16{dst.Port()}}}}
	p, err := load(cfg)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	p.links[p.sysExit].Close()
	p.links[p.sysExit] = closedLink{}
	if seen, calls, err := p.probeOnce(); err != nil || seen || calls < 2 {
		t.Fatalf("detached program: seen %v after %d calls, err %v; want unseen after several", seen, calls, err)
	}
	if err := p.reattachSysExit(); err != nil {
		t.Fatal(err)
	}
	if seen, _, err := p.probeOnce(); err != nil || !seen {
		t.Fatalf("re-attached program: seen %v, err %v", seen, err)
	}

	p.links[p.sysExit].Close()
	p.links[p.sysExit] = closedLink{}
	probe := p.probeSyscallLayer(1)
	if probe.Seen || probe.Err != nil || probe.Attempts != 1 {
		t.Fatalf("probe of a detached program: %+v", probe)
	}
	p, err = p.settle(cfg, probe)
	if err != nil {
		t.Fatalf("load without the syscall layer: %v", err)
	}
	defer p.Close()
	h := syscallHook(t, p)
	if h.Status() != session.StatusDegraded || !strings.HasPrefix(h.Why, "attached, but the kernel never ran it: ") {
		t.Errorf("plan entry %+v, want degraded, saying the kernel never ran it", h)
	}
	t.Logf("plan: %s", h.Why)

	rd, err := ringbuf.NewReader(p.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	conn, err := net.Dial("tcp4", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	raw.Control(func(f uintptr) { fd = int(f) })
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.SendmsgN(fd, make([]byte, 321), nil, nil, unix.MSG_NOSIGNAL); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("send after shutdown: %v, want EPIPE", err)
	}
	rd.SetDeadline(time.Now().Add(5 * time.Second))
	dec := NewDecoder(host.BootWall(), 250)
	for {
		rec, err := rd.Read()
		if err != nil {
			t.Fatalf("no send error from the socket layer: %v", err)
		}
		var e events.Event
		if err := dec.Decode(rec.RawSample, &e); err != nil {
			t.Fatal(err)
		}
		if e.Kind != events.KindSendError {
			continue
		}
		if e.Layer != events.LayerStack || e.Errno != int32(unix.EPIPE) || e.Syscall != "sendmsg" || e.Bytes != 321 {
			t.Errorf("event %+v, want the socket layer's EPIPE of a 321-byte sendmsg", e)
		}
		return
	}
}
