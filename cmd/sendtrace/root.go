package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/loader"
	"github.com/sendtrace/sendtrace/internal/render"
	"github.com/sendtrace/sendtrace/internal/tracer"
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "sendtrace [--pid N]... [filters] [-o text|json] [--duration D]",
		Short: "Show why sends are failing: process, socket, errno, destination and kernel cause",
		Long: `sendtrace shows every failed send on this machine (or of the processes you
name), with the errno the application got, the socket's destination and the
size of the send, and the retransmits, resets and error reports that came
before it, each attributed to the socket's owner. On exit it prints a summary
whose totals are exact even when the stream lost events.`,
		Example: `  sudo sendtrace --pid 1234
  sudo sendtrace --dst 198.18.0.0/15 --errno ECONNRESET -o json
  sudo sendtrace check`,
		Version:       version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	tf := addTraceFlags(cmd, 16)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "event format: text or json (JSON Lines on stdout, summary on stderr)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		opts, err := tf.options()
		if err != nil {
			return err
		}
		if output != "text" && output != "json" {
			return fmt.Errorf("invalid --output %q: give text or json", output)
		}
		if done, err := withBTFFile(opts.BTFPath); done || err != nil {
			return err
		}
		return runLive(cmd.Context(), opts, output, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runLive(_ context.Context, opts tracer.Options, output string, stdout, stderr io.Writer) error {
	if err := preflight(); err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()

	bw := bufio.NewWriterSize(stdout, 64<<10)
	var stream render.Stream
	summaryOut := stdout
	if output == "json" {
		stream = render.NewJSON(bw)
		summaryOut = stderr
	} else {
		txt := render.NewText(bw)
		stream = txt
	}
	summary := render.NewSummary()
	var sess *tracer.Session
	onStart := func(s *tracer.Session) error {
		sess = s
		warnDegraded(stderr, s.Hooks)
		if t, ok := stream.(*render.Text); ok {
			if err := t.WriteHeader(); err != nil {
				return err
			}
		}
		return bw.Flush()
	}
	// Flush at least every event burst: an on-call engineer reads the
	// stream as it happens.
	flushes := make(chan struct{}, 1)
	done := make(chan struct{})
	defer close(done)
	go periodicFlush(done, flushes)
	engine := diagnose.New(diagnose.Config{})
	var diagnosed []diagnose.Diagnosis
	var dbuf []byte
	// A diagnosis follows the event that concluded it, so the stream that
	// wrote the event is flushed into bw first.
	emit := func(ds []diagnose.Diagnosis) error {
		if len(ds) == 0 {
			return nil
		}
		// The exit summary keeps a bounded number; a storm of failures
		// over days must not grow memory without limit.
		if len(diagnosed) < 1<<16 {
			diagnosed = append(diagnosed, ds...)
		}
		if err := stream.Flush(); err != nil {
			return err
		}
		for i := range ds {
			if output == "json" {
				dbuf = diagnose.AppendJSON(dbuf[:0], &ds[i])
			} else {
				dbuf = diagnose.AppendText(dbuf[:0], &ds[i])
			}
			if _, err := bw.Write(append(dbuf, '\n')); err != nil {
				return err
			}
		}
		return nil
	}
	var writeErr error
	totals, err := tracer.Run(ctx, opts, onStart, func(e *events.Event) {
		summary.Observe(e)
		ds := engine.Observe(e)
		if writeErr == nil {
			writeErr = stream.Write(e)
		}
		if writeErr == nil {
			writeErr = emit(ds)
		}
		select {
		case <-flushes:
			writeErr = errors.Join(writeErr, stream.Flush(), bw.Flush())
		default:
		}
	})
	if err != nil {
		return explain(err)
	}
	if writeErr == nil {
		writeErr = emit(engine.Finish())
	}
	if err := errors.Join(writeErr, stream.Flush(), bw.Flush()); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	if sess != nil && sess.StopReason == "targets exited" {
		fmt.Fprintln(stderr, "sendtrace: every --pid target has exited")
	}
	if err := summary.Render(summaryOut, totals); err != nil {
		return err
	}
	return diagnose.RenderSummary(summaryOut, diagnosed)
}

func warnDegraded(w io.Writer, hooks []tracer.Hook) {
	for _, h := range hooks {
		if h.Off {
			fmt.Fprintf(w, "sendtrace: layer %s is %s\n", h.Layer, h.Why)
			continue
		}
		if !h.Active {
			fmt.Fprintf(w, "sendtrace: warning: layer %s is degraded on this kernel (%s); run 'sendtrace check' for details\n", h.Layer, h.Why)
		}
	}
}

// privilegeAdvice names the capabilities tracing needs and no more: a file
// capability outside the machine's bounding set (CAP_SYS_RESOURCE, often)
// stops the binary from starting at all, and since 5.11 BPF memory is
// charged to the cgroup, not to RLIMIT_MEMLOCK.
const privilegeAdvice = "run as root (sudo sendtrace ...) or grant CAP_BPF and CAP_PERFMON (sudo setcap cap_bpf,cap_perfmon+ep sendtrace)"

// preflight turns the commonest set-up problems into one line that says
// what to do, before any BPF is loaded.
func preflight() error {
	if os.Geteuid() != 0 {
		caps, err := effectiveCaps()
		if err == nil && !(caps.has(capBPF) && caps.has(capPerfmon)) && !caps.has(capSysAdmin) {
			return &exitError{code: 2, err: errors.New("not enough privilege: " + privilegeAdvice)}
		}
	}
	return nil
}

// explain turns loader errors into instructions.
func explain(err error) error {
	switch {
	case errors.Is(err, loader.ErrNoBTF):
		return &exitError{code: 2, err: fmt.Errorf("%w: this kernel was built without CONFIG_DEBUG_INFO_BTF; pass --btf FILE with BTF for exactly this kernel", err)}
	case errors.Is(err, loader.ErrPermission):
		return &exitError{code: 2, err: fmt.Errorf("%w: %s", err, privilegeAdvice)}
	}
	return err
}
