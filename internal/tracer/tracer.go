// Package tracer runs one tracing session: it plans and attaches the BPF
// programs, streams decoded events to a handler, and returns the kernel's
// exact totals when the session ends.
package tracer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/loader"
)

// Filters select which events the kernel emits (see loader.Filters).
type Filters = loader.Filters

// Options configure a session.
type Options struct {
	Filters   Filters
	BTFPath   string        // kernel BTF to use instead of /sys/kernel/btf/vmlinux
	ReadyFile string        // written once every program is attached
	Duration  time.Duration // 0: until ctx is cancelled
	// Disable names hooks the planner must not use (for example "fexit"),
	// so fallbacks can be exercised on kernels that have the preferred hook.
	Disable []string
	// AllStateChanges streams connects and closes of every matching socket.
	AllStateChanges bool
	// CountSends counts successful sends per socket and destination, for
	// rates (Session.Destinations). It costs a lookup on every successful
	// send, so live mode leaves it off.
	CountSends bool
	// NoSyscallLayer leaves sys_exit unhooked (see loader.Config).
	NoSyscallLayer bool
	// RingMiB sizes the ring buffer in MiB (a power of two); 0 keeps 8.
	RingMiB uint32
}

// Hook is the planner's choice for one layer.
type Hook struct {
	Layer  string   `json:"layer"`
	Hook   string   `json:"hook"`
	Active bool     `json:"active"`
	Off    bool     `json:"off,omitempty"` // not hooked by choice (--no-syscall-layer)
	Why    string   `json:"why"`
	Tried  []string `json:"tried,omitempty"`
}

// Session describes a running session to the caller. Destinations and
// Counters are filled when Run returns.
type Session struct {
	Hooks    []Hook
	BootTime time.Time // wall-clock time of CLOCK_MONOTONIC zero
	// StopReason says why the session ended: "signal", "duration",
	// "targets exited".
	StopReason   string
	Destinations []loader.DstStat
	Counters     loader.Counters
	// Live reads the kernel's loss and attribution counters while the
	// session runs (for status lines); it is valid until Run returns.
	Live func() (loader.Counters, error)
}

// Handler receives each decoded event. The Event is only valid during the
// call: copy it to keep it.
type Handler func(*events.Event)

// Plan loads and attaches everything, reports the plan, and detaches: the
// answer `sendtrace check` prints.
func Plan(opts Options) ([]Hook, error) {
	t, err := loader.Load(loaderConfig(opts))
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return hooks(t.Plan), nil
}

func loaderConfig(opts Options) loader.Config {
	return loader.Config{
		Filters:         opts.Filters,
		SelfPID:         uint32(os.Getpid()),
		BTFPath:         opts.BTFPath,
		Disable:         opts.Disable,
		AllStateChanges: opts.AllStateChanges,
		CountSends:      opts.CountSends,
		NoSyscallLayer:  opts.NoSyscallLayer,
		RingBytes:       opts.RingMiB << 20,
	}
}

func hooks(plan []loader.Choice) []Hook {
	out := make([]Hook, len(plan))
	for i, c := range plan {
		out[i] = Hook{Layer: c.Layer, Hook: c.Hook, Active: c.Active, Off: c.Off, Why: c.Why, Tried: c.Tried}
	}
	return out
}

// Run plans, loads and attaches the programs, calls onStart once every
// program is attached (after ReadyFile is written), then streams events to
// h until ctx is done, Duration passes, or every --pid target has exited.
// It returns the exact totals read from the kernel at the end.
func Run(ctx context.Context, opts Options, onStart func(*Session) error, h Handler) (*events.Totals, error) {
	for _, pid := range opts.Filters.PIDs {
		if !pidAlive(pid) {
			return nil, fmt.Errorf("no process with pid %d: give the pid of a running process", pid)
		}
	}
	t, err := loader.Load(loaderConfig(opts))
	if err != nil {
		return nil, err
	}
	defer t.Close()
	// Loading parsed the kernel's BTF (tens of MiB) that nothing needs
	// any more; give it back now rather than at the runtime's leisure,
	// since sendtrace runs beside the workload it watches.
	debug.FreeOSMemory()

	hz, _ := loader.KernelHZ()
	sess := &Session{Hooks: hooks(t.Plan), BootTime: loader.BootWall(), Live: t.Counters}
	rd, err := ringbuf.NewReader(t.Events())
	if err != nil {
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	defer rd.Close()

	// Sockets that existed before the session get their owners now, so
	// that async events on them are attributed (and pass --pid).
	if err := t.SeedOwners(); err != nil {
		return nil, fmt.Errorf("seed socket owners: %w", err)
	}
	if opts.ReadyFile != "" {
		if err := os.WriteFile(opts.ReadyFile, []byte(readyText(sess)), 0o644); err != nil {
			return nil, fmt.Errorf("write ready file: %w", err)
		}
	}
	if onStart != nil {
		if err := onStart(sess); err != nil {
			return nil, err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan string, 4)
	go watch(ctx, t, opts, stop)

	dec := loader.NewDecoder(sess.BootTime, hz)
	var lostUser uint64
	readErr := make(chan error, 1)
	go func() {
		readErr <- readLoop(rd, dec, h, &lostUser)
	}()

	var reason string
	select {
	case <-ctx.Done():
		reason = "signal"
	case reason = <-stop:
	case err := <-readErr:
		return nil, fmt.Errorf("read events: %w", err)
	}
	sess.StopReason = reason

	// Stop the programs, then drain what they already wrote, so the
	// stream ends complete.
	t.Detach()
	if err := rd.Flush(); err != nil {
		return nil, fmt.Errorf("flush ring buffer: %w", err)
	}
	if err := <-readErr; err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}

	tot, err := t.Totals()
	if err != nil {
		return nil, err
	}
	tot.LostUser = lostUser
	if sess.Destinations, err = t.DstStats(); err != nil {
		return nil, err
	}
	if sess.Counters, err = t.Counters(); err != nil {
		return nil, err
	}
	return tot, nil
}

func readyText(s *Session) string {
	var b strings.Builder
	for _, h := range s.Hooks {
		state := h.Hook
		switch {
		case h.Off:
			state = "off"
		case !h.Active:
			state = "degraded"
		}
		fmt.Fprintf(&b, "%s\t%s\n", h.Layer, state)
	}
	return b.String()
}

// readLoop decodes until the reader is closed or its deadline passes.
func readLoop(rd *ringbuf.Reader, dec *loader.Decoder, h Handler, lostUser *uint64) error {
	var rec ringbuf.Record
	var ev events.Event
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, ringbuf.ErrFlushed) {
				return nil
			}
			return err
		}
		if err := dec.Decode(rec.RawSample, &ev); err != nil {
			*lostUser++
			continue
		}
		h(&ev)
	}
}

// watch ends the session on --duration or when every --pid target has
// exited, and keeps owners seeded for sockets accepted during the session.
func watch(ctx context.Context, t *loader.Tracer, opts Options, stop chan<- string) {
	var deadline <-chan time.Time
	if opts.Duration > 0 {
		timer := time.NewTimer(opts.Duration)
		defer timer.Stop()
		deadline = timer.C
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var lastUnowned uint64
	lastSeed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			stop <- "duration"
			return
		case <-tick.C:
		}
		if len(opts.Filters.PIDs) > 0 && !anyAlive(opts.Filters.PIDs) {
			stop <- "targets exited"
			return
		}
		// Accepted sockets have no process-context hook of their own:
		// seed them when async events found unowned sockets, and once a
		// second when a process filter would otherwise drop those events.
		c, err := t.Counters()
		if err != nil {
			continue
		}
		hasProcFilter := len(opts.Filters.PIDs)+len(opts.Filters.Comms)+len(opts.Filters.Cgroups) > 0
		if c.Unowned != lastUnowned || (hasProcFilter && time.Since(lastSeed) >= time.Second) {
			lastUnowned = c.Unowned
			lastSeed = time.Now()
			_ = t.SeedOwners()
		}
	}
}

// pidAlive reports whether a process exists and has not exited (a zombie
// waiting for its parent counts as exited).
func pidAlive(pid uint32) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
}

func anyAlive(pids []uint32) bool {
	for _, p := range pids {
		if pidAlive(p) {
			return true
		}
	}
	return false
}
