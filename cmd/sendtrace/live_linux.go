//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/loader"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/render"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/tracer"
	"github.com/sendtrace/sendtrace/internal/workload"
)

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// runLive streams events to stdout, text or JSON Lines, and ends with
// the summary (on stderr with JSON, so stdout stays machine-readable).
func runLive(opts session.Options, output string, stdout, stderr io.Writer) error {
	if done, err := prepareTracing(opts); done || err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()

	var stream pipeline.Sink = render.NewText(stdout)
	summaryOut := stdout
	if output == "json" {
		stream, summaryOut = render.NewJSON(stdout), stderr
	}
	p := enrich(pipeline.New(diagnose.New(diagnose.DefaultConfig()), stream, render.NewSummarySink(summaryOut)), workloads(stderr, workload.Config{}, opts.Disable))
	describe := func(d *session.Description) error {
		warnDegraded(stderr, d.Hooks)
		return nil
	}
	opts.Notices = stderr
	end, err := tracer.Run(ctx, opts, version, describe, p, nil)
	if err != nil {
		return explain(err)
	}
	if end.Reason == session.StopTargetsExited {
		fmt.Fprintln(stderr, "sendtrace: every --pid target has exited")
	}
	return nil
}

func warnDegraded(w io.Writer, plan session.Plan) {
	for _, h := range plan {
		switch h.Status() {
		case session.StatusOff:
			fmt.Fprintf(w, "sendtrace: layer %s is %s\n", format.Printable(h.Layer), format.Printable(h.Why))
		case session.StatusDegraded:
			fmt.Fprintf(w, "sendtrace: warning: layer %s is degraded on this kernel (%s); run 'sendtrace check' for details\n", format.Printable(h.Layer), format.Printable(h.Why))
		}
	}
}

// privilegeAdvice names the capabilities tracing needs and no more: a file
// capability outside the machine's bounding set (CAP_SYS_RESOURCE, often)
// stops the binary from starting at all, and since 5.11 BPF memory is
// charged to the cgroup, not to RLIMIT_MEMLOCK.
const privilegeAdvice = "run as root (sudo sendtrace ...) or grant CAP_BPF and CAP_PERFMON (sudo setcap cap_bpf,cap_perfmon+ep sendtrace)"

// prepareTracing is how every tracing command starts: a --btf file is put
// in place (done is true when a child process did the work) and the
// commonest set-up problems are caught before any BPF is loaded, a kernel
// BTF file hidden or emptied among them.
func prepareTracing(opts session.Options) (done bool, err error) {
	if done, err := withBTFFile(opts.BTFPath); done || err != nil {
		return done, err
	}
	if err := preflight(); err != nil {
		return false, err
	}
	if opts.BTFPath == "" {
		return false, checkKernelBTF(vmlinuxBTF)
	}
	return false, nil
}

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
