// Package tracer runs one live session: it plans and attaches the BPF
// programs, streams decoded events into a pipeline, and ends it with the
// kernel's exact totals.
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
	"github.com/sendtrace/sendtrace/internal/host"
	"github.com/sendtrace/sendtrace/internal/loader"
	"github.com/sendtrace/sendtrace/internal/outfile"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/procstate"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/sockowner"
	"github.com/sendtrace/sendtrace/internal/workload"
)

// Live reads the kernel's loss and attribution counters while a session
// runs (for status lines).
type Live func() (loader.Counters, error)

// Plan loads and attaches everything, reports the plan, and detaches: the
// answer `sendtrace check` prints.
func Plan(opts session.Options) (session.Plan, error) {
	t, err := loader.Load(loaderConfig(opts))
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return t.Plan, nil
}

func loaderConfig(opts session.Options) loader.Config {
	return loader.Config{Options: opts, SelfPID: uint32(os.Getpid())}
}

// StopOutputFailed is the stop reason when a sink could not write.
const StopOutputFailed = "output failed"

// Describer completes the session's description once the plan is known
// (the recorder adds sysctls); it may be nil.
type Describer func(*session.Description) error

// Run plans, loads and attaches the programs, begins the pipeline once
// every program is attached (then writes ReadyFile), then streams
// events into it until ctx is done, Duration passes, every --pid target
// has exited, or a sink fails. It ends the pipeline with the kernel's
// exact totals; sinks that are Stoppers read what they need just before
// the programs are detached. live, when not nil, receives a function that reads the
// kernel's counters while the session runs.
func Run(ctx context.Context, opts session.Options, version string, describe Describer, p *pipeline.Pipeline, live func(Live)) (*session.End, error) {
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
	if pr := t.SyscallProbe; pr.Seen && pr.Attempts > 1 && opts.Notices != nil {
		fmt.Fprintf(opts.Notices, "sendtrace: layer %s: the kernel did not run its program until it was attached again (%s)\n", session.LayerSyscallExit, pr)
	}
	// Loading parsed the kernel's BTF (tens of MiB) that nothing needs
	// any more; give it back now rather than at the runtime's leisure,
	// since sendtrace runs beside the workload it watches.
	debug.FreeOSMemory()

	hz, _ := loader.KernelHZ()
	boot := host.BootWall()
	rd, err := ringbuf.NewReader(t.Events())
	if err != nil {
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	defer rd.Close()

	// Sockets that existed before the session get their owners now, so
	// that async events on them are attributed (and pass --pid).
	owners := startOwnerLookup(t, opts)
	seed := func() error {
		if err := t.SeedOwners(); err != nil {
			return err
		}
		return owners.seedListeners()
	}
	if err := seed(); err != nil {
		return nil, fmt.Errorf("seed socket owners: %w", err)
	}
	desc := host.Describe(version, opts, t.Plan, boot)
	if describe != nil {
		if err := describe(desc); err != nil {
			return nil, err
		}
	}
	if err := p.Begin(desc); err != nil {
		return nil, err
	}
	// Ready only once the sinks have begun: a recording's namespace
	// counters are first read there, and traffic a test starts on
	// the ready file must come after that reading.
	if opts.ReadyFile != "" {
		if err := outfile.WriteReady(opts.ReadyFile, readyText(t.Plan, opts.ReadyLines)); err != nil {
			return nil, err
		}
	}
	if live != nil {
		live(t.Counters)
	}
	totals := owners.totals(t.Totals)
	p.WatchTotals(pipeline.LiveTotals{Read: totals, Retire: t.RetireTotals})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan string, 4)
	go watch(ctx, t, seed, opts, stop)

	dec := loader.NewDecoder(boot, hz).NameDrops(t.DropNames)
	var lostUser, received uint64
	readErr := make(chan error, 1)
	go func() {
		readErr <- readLoop(rd, dec, owners, p, opts.EventBatch, &lostUser, &received)
	}()

	var reason string
	select {
	case <-ctx.Done():
		reason = session.StopSignal
	case reason = <-stop:
	case err := <-readErr:
		if p.Err() == nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		// A sink failed (a full disk, a closed pipe): the session is
		// over, but every sink still ends with the kernel's totals.
		readErr <- nil
		reason = StopOutputFailed
	}

	// Stop the programs, then drain what they already wrote, so the
	// stream ends complete.
	p.Stopping()
	t.Detach()
	if err := rd.Flush(); err != nil {
		return nil, fmt.Errorf("flush ring buffer: %w", err)
	}
	if err := <-readErr; err != nil && p.Err() == nil {
		return nil, fmt.Errorf("read events: %w", err)
	}

	end := &session.End{Reason: reason, Time: time.Now(), MonoNS: host.MonoNow(), Received: received}
	// The traffic pass goes first: reading the counters of sockets still
	// open also settles their untraced retransmits into the totals.
	if end.Traffic, err = t.Traffic(opts.CountSends); err != nil {
		return nil, err
	}
	if end.Totals, err = totals(); err != nil {
		return nil, err
	}
	end.Totals.LostUser = lostUser
	return end, p.End(end)
}

// startOwnerLookup makes the lookup of unattributed events' owners when
// the session filters processes (without a filter, such events pass as
// they are, with no owner); nil otherwise.
func startOwnerLookup(t *loader.Programs, opts session.Options) *ownerLookup {
	if !opts.Filters.ProcessFilter() {
		return nil
	}
	root, _ := workload.CgroupV2Mount()
	f := &sockowner.Finder{ProcRoot: "/proc", CgroupRoot: root, Filters: opts.Filters, Now: host.MonoNow}
	// The sockets older than the session are the ones the kernel may
	// have no owner for: index them now, while their processes live.
	f.Scan()
	l := newOwnerLookup(f, t.SetProcOwner, t.ForgetProcOwner)
	if h, ok := t.Plan.Layer(session.LayerOwnerSeed); ok && h.Status() != session.StatusOn {
		// Without the seeding iterator nothing gives listeners owners
		// for the sockets accepted from them: user space does.
		l.listeners = t.SetListenerOwners
	}
	return l
}

// readyText is the ready file: a "layer\thook" line per layer, then the
// caller's own lines.
func readyText(plan session.Plan, more []string) string {
	var b strings.Builder
	for _, h := range plan {
		fmt.Fprintf(&b, "%s\t%s\n", h.Layer, h.Shown())
	}
	for _, l := range more {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// quietAfter is how long the stream may be silent before buffered output
// is flushed for the person watching it.
const quietAfter = 100 * time.Millisecond

// flushTick is how often an idle stream is flushed all the same: the text
// stream sums a connection's retransmits over a second and prints the sum
// when the second is over, even if nothing follows it.
const flushTick = 250 * time.Millisecond

// readLoop decodes into the pipeline until the reader is closed or a
// sink fails. When the ring buffer stays empty for quietAfter, it
// flushes the sinks, so that a person sees each burst as it happens, and
// then every flushTick while it stays empty. With batch set, the programs
// wake it only for a large batch, so it also reads whatever waits every
// batch.
func readLoop(rd *ringbuf.Reader, dec *loader.Decoder, owners *ownerLookup, p *pipeline.Pipeline, batch time.Duration, lostUser, received *uint64) error {
	var rec ringbuf.Record
	var ev events.Event
	dirty := false
	for {
		switch {
		case batch > 0:
			rd.SetDeadline(time.Now().Add(batch))
		case dirty:
			rd.SetDeadline(time.Now().Add(quietAfter))
		default:
			rd.SetDeadline(time.Now().Add(flushTick))
		}
		if err := rd.ReadInto(&rec); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				dirty = false
				if err := p.Flush(); err != nil {
					return err
				}
				continue
			case errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, ringbuf.ErrFlushed):
				return nil
			}
			return err
		}
		if err := dec.Decode(rec.RawSample, &ev); err != nil {
			*lostUser++
			continue
		}
		*received++
		if owners != nil {
			if ino, pending := loader.PendingOwner(rec.RawSample); pending && !owners.resolve(&ev, ino) {
				continue
			}
			owners.counted(&ev)
		}
		if err := p.Event(&ev); err != nil {
			return err
		}
		dirty = true
	}
}

// watch ends the session on --duration or when every --pid target has
// exited, and keeps owners seeded for sockets accepted during the session.
func watch(ctx context.Context, t *loader.Programs, seed func() error, opts session.Options, stop chan<- string) {
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
	loss := lossNotice{w: opts.Notices}
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			stop <- session.StopDuration
			return
		case <-tick.C:
		}
		if len(opts.Filters.PIDs) > 0 && !anyAlive(opts.Filters.PIDs) {
			stop <- session.StopTargetsExited
			return
		}
		// Accepted sockets have no process-context hook of their own:
		// seed them when async events found unowned sockets, and once a
		// second when a process filter would otherwise drop those events.
		c, err := t.Counters()
		if err != nil {
			continue
		}
		loss.check(time.Now(), c.Lost)
		if c.Unowned != lastUnowned || (opts.Filters.ProcessFilter() && time.Since(lastSeed) >= time.Second) {
			lastUnowned = c.Unowned
			lastSeed = time.Now()
			_ = seed()
		}
	}
}

// pidAlive reports whether a process exists and has not exited (a zombie
// waiting for its parent counts as exited).
func pidAlive(pid uint32) bool { return procstate.Alive(int(pid)) }

func anyAlive(pids []uint32) bool {
	for _, p := range pids {
		if pidAlive(p) {
			return true
		}
	}
	return false
}
