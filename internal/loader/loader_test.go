package loader_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/host"
	"github.com/sendtrace/sendtrace/internal/loader"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/testutil"
	"golang.org/x/sys/unix"
)

// bpfFDs counts this process's file descriptors for BPF objects, by kind.
func bpfFDs(t *testing.T) map[string]int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue
		}
		// The kernel names them bpf-map, bpf-prog and bpf_link.
		if kind, ok := strings.CutPrefix(target, "anon_inode:bpf"); ok && len(kind) > 1 {
			n[kind[1:]]++
		}
	}
	return n
}

func TestLoadAttachCloseLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	before := bpfFDs(t)
	tr, err := loader.Load(loader.Config{SelfPID: uint32(os.Getpid())})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	during := bpfFDs(t)
	if during["link"] <= before["link"] {
		t.Fatalf("no BPF links held while loaded: before %v, during %v", before, during)
	}
	for _, c := range tr.Plan {
		if c.Layer == session.LayerSendReturn || c.Layer == session.LayerSyscallExit {
			if !c.Active {
				t.Errorf("layer %s degraded on this kernel: %v", c.Layer, c.Tried)
			}
		}
	}
	if err := tr.SeedOwners(); err != nil {
		t.Errorf("seed owners: %v", err)
	}
	tr.Close()
	after := bpfFDs(t)
	for _, kind := range []string{"link", "prog", "map"} {
		if after[kind] != before[kind] {
			t.Errorf("%d bpf-%s descriptors before load, %d after close", before[kind], kind, after[kind])
		}
	}
}

// TestOneEventPerFailedCall fails one sendmsg and checks that it is one
// event and one count in the kernel's totals, with the errno, size and
// syscall. With the syscall layer, the stack's record is joined at the
// syscall's exit; without it (--no-syscall-layer), the stack layer reads
// the syscall and its size from the registers itself.
func TestOneEventPerFailedCall(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name      string
		noSyscall bool
		layer     events.Layer
	}{
		{"joined", false, events.LayerBoth},
		{"stack-only", true, events.LayerStack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failOneSend(t, tc.noSyscall, tc.layer)
		})
	}
}

func failOneSend(t *testing.T, noSyscall bool, layer events.Layer) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			time.Sleep(2 * time.Second)
			c.Close()
		}
	}()
	conn, err := net.Dial("tcp4", ln.Addr().String())
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

	// Only this test's destination: other tests may fail sends meanwhile.
	dst := conn.RemoteAddr().(*net.TCPAddr).AddrPort()
	tr, err := loader.Load(loader.Config{
		SelfPID: 1, // this process is the sender here
		Options: session.Options{Filters: session.Filters{Ports: []uint16{dst.Port()}}, NoSyscallLayer: noSyscall},
	})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	defer tr.Close()
	for _, c := range tr.Plan {
		if c.Layer == session.LayerSyscallExit && (c.Active == noSyscall || c.Off != noSyscall) {
			t.Fatalf("syscall-exit layer active=%v off=%v with NoSyscallLayer=%v", c.Active, c.Off, noSyscall)
		}
	}
	rd, err := ringbuf.NewReader(tr.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()

	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	const size = 777
	_, err = unix.SendmsgN(fd, make([]byte, size), nil, nil, unix.MSG_NOSIGNAL)
	if !errors.Is(err, unix.EPIPE) {
		t.Fatalf("send after shutdown: got %v, want EPIPE", err)
	}

	dec := loader.NewDecoder(host.BootWall(), 250)
	rd.SetDeadline(time.Now().Add(5 * time.Second))
	var got []events.Event
	for {
		rec, err := rd.Read()
		if err != nil {
			break
		}
		var e events.Event
		if err := dec.Decode(rec.RawSample, &e); err != nil {
			t.Fatal(err)
		}
		if e.Kind == events.KindSendError {
			got = append(got, e)
			rd.SetDeadline(time.Now().Add(300 * time.Millisecond))
		}
	}
	if len(got) != 1 {
		t.Fatalf("got %d send_error events for one failed call, want 1: %+v", len(got), got)
	}
	e := got[0]
	if e.Errno != int32(unix.EPIPE) || e.StackErrno != int32(unix.EPIPE) || e.Layer != layer {
		t.Errorf("errno %d stack %d layer %v, want EPIPE, layer %v", e.Errno, e.StackErrno, e.Layer, layer)
	}
	if e.Syscall != "sendmsg" || e.Bytes != size {
		t.Errorf("syscall %q bytes %d, want sendmsg %d", e.Syscall, e.Bytes, size)
	}
	if e.PID != uint32(os.Getpid()) || e.Dst != dst {
		t.Errorf("pid %d dst %v, want %d %v", e.PID, e.Dst, os.Getpid(), dst)
	}
	tot, err := tr.Totals()
	if err != nil {
		t.Fatal(err)
	}
	if n := tot.ByKey[events.TotalsKey{PID: e.PID, Kind: events.KindSendError, Errno: int32(unix.EPIPE), Dst: e.Dst}]; n.Count != 1 || n.Bytes != size {
		t.Errorf("kernel totals %+v, want 1 event of %d bytes", n, size)
	}
}

// trafficTo sends on two loopback connections under a tracer loaded with
// opts: three sends on one, closed before the counters are read, and two
// on one still open when they are read. It returns this process's
// per-destination counters for that destination, and whether there were
// any.
func trafficTo(t *testing.T, opts session.Options) (loader.DstStat, bool) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	dst := ln.Addr().(*net.TCPAddr).AddrPort()
	opts.Filters = session.Filters{Ports: []uint16{dst.Port()}}
	tr, err := loader.Load(loader.Config{SelfPID: 1, Options: opts})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	defer tr.Close()

	send := func(c net.Conn, n int) {
		for i := 0; i < n; i++ {
			if _, err := c.Write(make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
		}
	}
	closed, err := net.Dial("tcp4", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	send(closed, 3)
	closed.Close()
	open, err := net.Dial("tcp4", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	send(open, 2)
	time.Sleep(200 * time.Millisecond) // let the first socket reach CLOSE

	tr.Detach()
	stats, err := tr.DstStats()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Dst == dst && s.PID == uint32(os.Getpid()) {
			return s, true
		}
	}
	return loader.DstStat{}, false
}

// TestCountSends checks the per-destination send counts against what this
// process sent.
func TestCountSends(t *testing.T) {
	testutil.RequireRoot(t)
	got, _ := trafficTo(t, session.Options{CountSends: true})
	if got.Sends != 5 || got.SendBytes != 500 || got.Conns != 2 || got.BytesSent != 500 {
		t.Errorf("destination: %+v, want 5 sends, 500 bytes, 2 connections", got)
	}
}

// TestNoTraffic: with NoTraffic (serve) the same connections leave no
// per-destination counters in the kernel.
func TestNoTraffic(t *testing.T) {
	testutil.RequireRoot(t)
	if got, ok := trafficTo(t, session.Options{NoTraffic: true}); ok {
		t.Errorf("per-destination counters kept: %+v", got)
	}
}
