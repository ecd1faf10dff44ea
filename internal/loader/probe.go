package loader

import (
	"fmt"
	"runtime"
	"time"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/session"
)

// An attached tp_btf/sys_exit program has been seen never to run for a
// whole session (arm64 guests under qemu TCG) while every other program
// ran. The liveness probe makes a send of sendtrace's own fail and
// checks that the program saw it; the program recognises the probing
// thread by probe_tid and only counts it in probe_seen.
const (
	// probeWait bounds one attempt. The program runs in the failing
	// syscall itself, so a live one is seen at the first call; the
	// repeated calls give a program whose activation lags a chance.
	probeWait  = time.Second
	probeEvery = 20 * time.Millisecond
	// probeAttempts counts the first attach and the re-attaches.
	probeAttempts = 3
)

// SyscallProbe is what the liveness probe of the syscall layer found.
type SyscallProbe struct {
	Ran      bool // the layer was probed
	Seen     bool // its program saw the probe
	Attempts int  // attaches probed: 1 when the first attach was seen
	Calls    int  // failing sends made
	Err      error
}

func (p SyscallProbe) String() string {
	switch {
	case !p.Ran:
		return "not probed"
	case p.Err != nil:
		return "probe failed: " + p.Err.Error()
	case p.Seen && p.Attempts == 1:
		return "its liveness probe was seen"
	case p.Seen:
		return "its liveness probe was seen only once it had been attached " + times(p.Attempts)
	}
	return fmt.Sprintf("attached, but the kernel never ran it: it saw none of %d failing sends of sendtrace's own, attached %s", p.Calls, times(p.Attempts))
}

func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// probeSyscallLayer probes the sys_exit program and re-attaches it when
// it is not seen, for at most attempts attaches in all.
func (t *Programs) probeSyscallLayer(attempts int) SyscallProbe {
	res := SyscallProbe{Ran: true}
	if t.maps.ProbeTID == nil || t.maps.ProbeSeen == nil || t.sysExit < 0 {
		res.Err = fmt.Errorf("probe variables or program missing")
		return res
	}
	for res.Attempts = 1; ; res.Attempts++ {
		seen, calls, err := t.probeOnce()
		res.Calls += calls
		if err != nil {
			res.Err = err
			return res
		}
		if seen {
			res.Seen = true
			return res
		}
		if res.Attempts >= attempts {
			return res
		}
		if err := t.reattachSysExit(); err != nil {
			res.Err = fmt.Errorf("re-attach sys_exit: %w", err)
			return res
		}
	}
}

// probeOnce makes failing sends from one locked thread until the program
// counts one or probeWait passes.
func (t *Programs) probeOnce() (seen bool, calls int, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := t.maps.ProbeSeen.Set(uint32(0)); err != nil {
		return false, 0, err
	}
	if err := t.maps.ProbeTID.Set(uint32(unix.Gettid())); err != nil {
		return false, 0, err
	}
	defer t.maps.ProbeTID.Set(uint32(0))
	deadline := time.Now().Add(probeWait)
	for {
		calls++
		// fd -1: EBADF, a send-family syscall that fails before any
		// socket is involved.
		if err := unix.Sendto(-1, []byte{0}, 0, nil); err != unix.EBADF {
			return false, calls, fmt.Errorf("probe sendto(-1) returned %v, not EBADF", err)
		}
		var n uint32
		if err := t.maps.ProbeSeen.Get(&n); err != nil {
			return false, calls, err
		}
		if n > 0 {
			return true, calls, nil
		}
		if time.Now().After(deadline) {
			return false, calls, nil
		}
		time.Sleep(probeEvery)
	}
}

// reattachSysExit closes the sys_exit link and attaches its program again.
func (t *Programs) reattachSysExit() error {
	t.links[t.sysExit].Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: t.progs[t.sysExit]})
	if err != nil {
		// The layer is then not attached at all; the caller degrades it.
		t.links[t.sysExit] = closedLink{}
		return err
	}
	t.links[t.sysExit] = l
	return nil
}

// closedLink stands in for a link that could not be attached again.
type closedLink struct{ link.Link }

func (closedLink) Close() error { return nil }

// degradeSyscallLayer is the plan entry of a syscall layer whose program
// never ran.
func degradeSyscallLayer(p SyscallProbe) session.Hook {
	return session.Hook{
		Layer: session.LayerSyscallExit,
		Why:   p.String() + "; the socket layer reports sizes and errnos instead, as with --no-syscall-layer",
		Tried: []string{"tp_btf/sys_exit: " + p.String()},
	}
}
