package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/render"
	"github.com/sendtrace/sendtrace/internal/tracer"
)

func init() { subcommands = append(subcommands, newRecordCmd) }

func newRecordCmd() *cobra.Command {
	var (
		out    string
		status time.Duration
	)
	cmd := &cobra.Command{
		Use:   "record -o FILE [filters] [--duration D]",
		Short: "Record failed sends and their kernel context to a file for later report and diff",
		Long: `record writes the event stream to FILE as JSON Lines: a header (host, kernel,
boot time, filters, hooks and the sysctls that govern sends), the events in
the same schema as -o json, and a footer with the kernel's exact totals.
FILE is compressed when it ends in .gz or .zst. Records reach the disk at
least once a second, so a recording cut short by kill -9 or a full disk
stays readable up to its last complete record.`,
		Example: `  sudo sendtrace record -o incident.jsonl.zst --dst 198.18.0.0/15 --duration 10m
  sendtrace report incident.jsonl.zst
  zstdcat incident.jsonl.zst | jq 'select(.kind=="send_error")'`,
		Args: cobra.NoArgs,
	}
	// 16 MiB rides out about 100 ms of writer stalls at 500k events/s;
	// the buffer is mapped into the process, so it counts in its RSS.
	tf := addTraceFlags(cmd, 16)
	cmd.Flags().StringVarP(&out, "output", "o", "", "recording file (.gz or .zst to compress); required")
	cmd.Flags().DurationVar(&status, "status-interval", 5*time.Second, "how often to print a status line on stderr; 0 turns it off")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if out == "" {
			return errors.New("missing -o FILE: say where to write the recording, e.g. -o incident.jsonl.zst")
		}
		opts, err := tf.options()
		if err != nil {
			return err
		}
		if done, err := withBTFFile(opts.BTFPath); done || err != nil {
			return err
		}
		// Rates in the footer (failed sends per 1,000 sends) need every
		// successful send counted.
		opts.CountSends = true
		return runRecord(opts, out, status, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

// recorder joins the tracer's handler, the status line and the end of
// the session.
type recorder struct {
	path   string
	opts   tracer.Options
	snap   *record.Snapshot
	stderr io.Writer

	mu      sync.Mutex
	w       *record.Writer
	header  *record.Header
	sess    *tracer.Session
	summary *render.Summary
	werr    error
	cancel  context.CancelFunc
	// retrans counts retransmits per destination from the events, for
	// when the kernel's per-destination counters are not available.
	retrans map[string]uint64
}

func runRecord(opts tracer.Options, path string, status time.Duration, stdout, stderr io.Writer) error {
	if err := preflight(); err != nil {
		return err
	}
	// Fail before loading any BPF when the file cannot be written.
	if err := unix.Access(filepath.Dir(path), unix.W_OK); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	var pid uint32
	if len(opts.Filters.PIDs) > 0 {
		pid = opts.Filters.PIDs[0]
	}
	snap, err := record.ReadSysctls(pid)
	if err != nil {
		return fmt.Errorf("read sysctls: %w", err)
	}

	ctx, cancel := signalContext()
	defer cancel()
	r := &recorder{
		path: path, opts: opts, snap: snap, stderr: stderr,
		summary: render.NewSummary(), cancel: cancel, retrans: map[string]uint64{},
	}

	done := make(chan struct{})
	var statusWG sync.WaitGroup
	if status > 0 {
		statusWG.Add(1)
		go func() {
			defer statusWG.Done()
			r.statusLoop(status, done)
		}()
	}
	totals, runErr := tracer.Run(ctx, opts, r.onStart, r.handle)
	close(done)
	statusWG.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w == nil {
		if runErr != nil {
			return explain(runErr)
		}
		return errors.New("the session ended before it started")
	}
	var footer *record.Footer
	if runErr == nil && r.werr == nil {
		dests, source := r.destinations()
		footer = record.NewFooter(time.Now(), record.MonoNow(), r.header, r.w.Events(), totals, dests, source)
	}
	closeErr := r.w.Close(footer)
	st := r.w.Stats()
	switch {
	case r.werr != nil:
		// The recording stopped because the file could not be written; the
		// summary still shows what was seen.
		_ = r.summary.Render(stdout, totals)
		return r.werr
	case runErr != nil:
		return fmt.Errorf("%w (the recording in %s has no footer)", explain(runErr), path)
	case closeErr != nil:
		return closeErr
	}
	fmt.Fprintf(stderr, "sendtrace: recorded %d events to %s (%s)\n", st.Events, path, sizeText(st.FileBytes))
	return r.summary.Render(stdout, totals)
}

func (r *recorder) onStart(s *tracer.Session) error {
	warnDegraded(r.stderr, s.Hooks)
	h := record.NewHeader(record.HeaderOptions{
		Version:  version,
		Filters:  r.opts.Filters,
		Duration: r.opts.Duration,
		Session:  s,
		Sysctls:  r.snap,
	})
	w, err := record.Create(r.path, h)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.w, r.header, r.sess = w, h, s
	r.mu.Unlock()
	return nil
}

func (r *recorder) handle(e *events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.summary.Observe(e)
	if e.Kind == events.KindRetransmit {
		r.retrans[record.DestKey(e.Dst)]++
	}
	if r.werr != nil || r.w == nil {
		return
	}
	if err := r.w.WriteEvent(e); err != nil {
		r.werr = err
		// A recording that cannot be written is over; tracing on would
		// only hide the problem.
		r.cancel()
	}
}

// destinations prefers the kernel's per-destination counters, which count
// every segment; without them only retransmits can be counted, from the
// events.
func (r *recorder) destinations() ([]record.DestStats, string) {
	if r.sess != nil && len(r.sess.Destinations) > 0 {
		type agg struct{ sends, bytes, segs, retrans uint64 }
		m := map[string]*agg{}
		for _, d := range r.sess.Destinations {
			k := record.DestKey(d.Dst)
			if k == "" || d.Sends+d.DataSegsOut+d.BytesSent+d.RetransSegs == 0 {
				// Listeners and sockets that never sent have nothing to
				// normalise by.
				continue
			}
			a := m[k]
			if a == nil {
				a = &agg{}
				m[k] = a
			}
			a.sends += d.Sends
			a.bytes += d.SendBytes
			a.segs += d.DataSegsOut
			a.retrans += d.RetransSegs
		}
		out := make([]record.DestStats, 0, len(m))
		for k, a := range m {
			sends, bytes := a.sends, a.bytes
			out = append(out, record.DestStats{Dst: k, Sends: &sends, Bytes: &bytes, DataSegs: a.segs, RetransSegs: a.retrans})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Dst < out[j].Dst })
		return out, "kernel"
	}
	out := make([]record.DestStats, 0, len(r.retrans))
	for k, n := range r.retrans {
		out = append(out, record.DestStats{Dst: k, RetransSegs: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst < out[j].Dst })
	return out, "events"
}

func (r *recorder) statusLoop(every time.Duration, done <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		r.mu.Lock()
		w, sess := r.w, r.sess
		r.mu.Unlock()
		if w == nil || sess == nil {
			continue
		}
		st := w.Stats()
		lost := "unknown"
		if c, err := sess.Live(); err == nil {
			lost = strconv.FormatUint(c.Lost, 10)
		}
		fmt.Fprintf(r.stderr, "sendtrace: recording %s: %s, %d events, %s lost, %s\n",
			r.path, time.Since(start).Round(time.Second), st.Events, lost, sizeText(st.FileBytes))
	}
}

func sizeText(n int64) string {
	switch {
	case n < 10<<10:
		return fmt.Sprintf("%d B", n)
	case n < 10<<20:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
