//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/host"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/render"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/tracer"
	"github.com/sendtrace/sendtrace/internal/workload"
)

// runRecord runs a live session into a recording and the exit summary.
func runRecord(opts session.Options, path string, force bool, status time.Duration, stdout, stderr io.Writer) error {
	if done, err := prepareTracing(opts); done || err != nil {
		return err
	}
	// Fail before loading any BPF when the file cannot be written.
	if err := unix.Access(filepath.Dir(path), unix.W_OK); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	snap, err := readSysctls(opts.Filters.PIDs, stderr)
	if err != nil {
		return err
	}

	ctx, cancel := signalContext()
	defer cancel()
	rec := record.NewRecorder(path, force)
	// The namespace sinks come before the recorder: their End gives the
	// footer the namespaces' sysctls and counters they read.
	p := enrich(pipeline.New(diagnose.New(diagnose.DefaultConfig()),
		host.NewNetnsSysctls(stderr), host.NewNetnsCounters(stderr), rec, render.NewSummarySink(stdout)), workloads(stderr, workload.Config{}, opts.Disable))
	describe := func(d *session.Description) error {
		warnDegraded(stderr, d.Hooks)
		snap.AddTo(d)
		host.NoteOtherNamespaces(d, opts.Filters.PIDs)
		return nil
	}
	var (
		liveMu sync.Mutex
		live   tracer.Live
	)
	done := make(chan struct{})
	var statusWG sync.WaitGroup
	if status > 0 {
		statusWG.Add(1)
		go func() {
			defer statusWG.Done()
			statusLoop(stderr, path, rec, status, done, func() tracer.Live {
				liveMu.Lock()
				defer liveMu.Unlock()
				return live
			})
		}()
	}
	opts.Notices = stderr
	end, runErr := tracer.Run(ctx, opts, version, describe, p, func(l tracer.Live) {
		liveMu.Lock()
		live = l
		liveMu.Unlock()
	})
	close(done)
	statusWG.Wait()

	st, began := rec.Stats()
	switch {
	case runErr != nil && end == nil && began:
		return fmt.Errorf("%w (the recording in %s has no footer)", explain(runErr), path)
	case runErr != nil:
		return explain(runErr)
	case !began:
		return errors.New("the session ended before it started")
	}
	fmt.Fprintf(stderr, "sendtrace: recorded %d events to %s (%s)\n", st.Events, format.Printable(path), sizeText(st.FileBytes))
	return nil
}

// readSysctls reads the send sysctls in the namespace of the first
// --pid, or in sendtrace's own. Entering another namespace needs
// CAP_SYS_ADMIN; without it the recording goes on without that
// namespace's sysctls, and says so.
func readSysctls(pids []uint32, stderr io.Writer) (*host.Snapshot, error) {
	if len(pids) == 0 {
		return host.ReadSysctls(0)
	}
	snap, err := host.ReadSysctls(pids[0])
	if err == nil {
		return snap, nil
	}
	if !errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("read sysctls: %w", err)
	}
	// Opening another user's /proc/PID/ns/net needs CAP_SYS_PTRACE, and
	// entering a namespace CAP_SYS_ADMIN.
	why := "entering the network namespace of pid " + strconv.FormatUint(uint64(pids[0]), 10) +
		" needs CAP_SYS_ADMIN (and CAP_SYS_PTRACE for another user's process)"
	fmt.Fprintf(stderr, "sendtrace: recording without that namespace's sysctls: %s\n", why)
	return &host.Snapshot{Values: map[string]string{}, Netns: session.Netns{PID: pids[0],
		Note: "sysctls not recorded: " + why}}, nil
}

func statusLoop(stderr io.Writer, path string, rec *record.Recorder, every time.Duration, done <-chan struct{}, live func() tracer.Live) {
	t := time.NewTicker(every)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		st, ok := rec.Stats()
		l := live()
		if !ok || l == nil {
			continue
		}
		lost := "unknown"
		if c, err := l(); err == nil {
			lost = strconv.FormatUint(c.Lost, 10)
		}
		fmt.Fprintf(stderr, "sendtrace: recording %s: %s, %d events, %s lost, %s\n",
			format.Printable(path), time.Since(start).Round(time.Second), st.Events, lost, sizeText(st.FileBytes))
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
