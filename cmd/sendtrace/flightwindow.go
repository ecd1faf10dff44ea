package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sendtrace/sendtrace/internal/flight"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/outfile"
)

// windowFlags pick a stretch of a flight recording: report --flight and
// record --from-flight.
type windowFlags struct {
	dir          string
	since, until string
	// The filters of report's window; record --from-flight hands on the
	// whole window.
	pids, comms, dsts, ports, containers, pods, units []string
}

func (wf *windowFlags) register(fl *pflag.FlagSet, dirFlag, dirUsage string) {
	fl.StringVar(&wf.dir, dirFlag, "", dirUsage)
	fl.StringVar(&wf.since, "since", "", "with a flight directory: the window's start, a duration ago (15m) or an RFC 3339 time")
	fl.StringVar(&wf.until, "until", "", "with a flight directory: the window's end, a duration ago or an RFC 3339 time (default: now)")
}

func (wf *windowFlags) registerFilters(fl *pflag.FlagSet) {
	fl.StringSliceVar(&wf.pids, "pid", nil, "with --flight: only this process's events; repeatable")
	fl.StringSliceVar(&wf.comms, "comm", nil, "with --flight: only processes with this command name; repeatable")
	fl.StringSliceVar(&wf.dsts, "dst", nil, "with --flight: only destinations in this CIDR (or address); repeatable")
	fl.StringSliceVar(&wf.ports, "port", nil, "with --flight: only this destination port; repeatable")
	fl.StringSliceVar(&wf.containers, "container", nil, "with --flight: only this container (id or a prefix of it); repeatable")
	fl.StringSliceVar(&wf.pods, "pod", nil, "with --flight: only the containers of this pod, NAMESPACE/NAME; repeatable")
	fl.StringSliceVar(&wf.units, "unit", nil, "with --flight: only this systemd unit; repeatable")
}

func (wf *windowFlags) hasFilters() bool {
	return len(wf.pids)+len(wf.comms)+len(wf.dsts)+len(wf.ports)+len(wf.containers)+len(wf.pods)+len(wf.units) > 0
}

// filter parses the window's filters.
func (wf *windowFlags) filter() (*flight.Filter, error) {
	f := &flight.Filter{Comms: wf.comms, Units: nil}
	for _, s := range wf.pids {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("invalid --pid %q: give a process id", s)
		}
		f.PIDs = append(f.PIDs, uint32(n))
	}
	for _, s := range wf.ports {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("invalid --port %q: give a port from 1 to 65535", s)
		}
		f.Ports = append(f.Ports, uint16(n))
	}
	for _, s := range wf.dsts {
		p, err := parseCIDR(s)
		if err != nil {
			return nil, err
		}
		f.Dsts = append(f.Dsts, p)
	}
	for _, c := range wf.containers {
		c = strings.ToLower(c)
		if !validContainerID(c) {
			return nil, fmt.Errorf("invalid --container %q: give a container id (at least 4 hex digits)", c)
		}
		f.Containers = append(f.Containers, c)
	}
	for _, p := range wf.pods {
		if _, _, err := parsePod(p); err != nil {
			return nil, err
		}
		f.Pods = append(f.Pods, p)
	}
	for _, u := range wf.units {
		f.Units = append(f.Units, unitName(u))
	}
	return f, nil
}

// window resolves --since and --until against now.
func (wf *windowFlags) window(now time.Time) (since, until time.Time, err error) {
	if wf.since == "" {
		return since, until, errors.New("missing --since: say where the window starts, such as --since 15m or --since 2026-12-06T20:00:00Z")
	}
	if since, err = flight.ParseTime("--since", wf.since, now); err != nil {
		return
	}
	until = now
	if wf.until != "" {
		if until, err = flight.ParseTime("--until", wf.until, now); err != nil {
			return
		}
	}
	if until.Before(since) {
		err = fmt.Errorf("--until %s is before --since %s: give a window that ends after it starts", wf.until, wf.since)
	}
	return
}

// checkDir says in one line why the flight directory cannot be read.
func (wf *windowFlags) checkDir() error {
	st, err := os.Stat(wf.dir)
	switch {
	case err != nil && os.IsNotExist(err):
		return fmt.Errorf("flight directory %s does not exist: give the --flight-dir that sendtrace serve writes", wf.dir)
	case err != nil:
		return fmt.Errorf("cannot read flight directory %s: %v", wf.dir, unwrapPath(err))
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory: give the --flight-dir that sendtrace serve writes", wf.dir)
	}
	return nil
}

// windowError turns Window's answers into one line that says what to do.
func (wf *windowFlags) windowError(err error, since, until time.Time) error {
	var bh *flight.BeforeHistoryError
	switch {
	case errors.As(err, &bh):
		return fmt.Errorf("--since %s is before the flight recording in %s: %w; give a later --since", wf.since, wf.dir, err)
	case errors.Is(err, flight.ErrNoData):
		return fmt.Errorf("nothing was recorded in %s between %s and %s: give a window when sendtrace serve --flight-dir was running", wf.dir,
			since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
	}
	return err
}

// name is how the report names the window: the flags that give it
// again.
func (wf *windowFlags) name(since, until time.Time) string {
	return fmt.Sprintf("--flight %s --since %s --until %s", wf.dir, since.UTC().Format(time.RFC3339Nano), until.UTC().Format(time.RFC3339Nano))
}

// tempWindow writes the window to a temporary recording (0600) for the
// report to read; remove it afterwards.
func (wf *windowFlags) tempWindow(now time.Time) (path, name string, err error) {
	if err := wf.checkDir(); err != nil {
		return "", "", err
	}
	since, until, err := wf.window(now)
	if err != nil {
		return "", "", err
	}
	filter, err := wf.filter()
	if err != nil {
		return "", "", err
	}
	f, err := os.CreateTemp("", "sendtrace-flight-*.jsonl.zst")
	if err != nil {
		return "", "", fmt.Errorf("create a temporary file for the window: %w", err)
	}
	err = flight.Window(wf.dir, since, until, filter.Func(), f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", "", wf.windowError(err, since, until)
	}
	return f.Name(), wf.name(since, until), nil
}

// recordFromFlight writes a flight window to out, a new file (outfile:
// an existing one only with --force, never one being read).
func recordFromFlight(wf *windowFlags, out string, force bool, stderr io.Writer) error {
	if !strings.HasSuffix(out, ".zst") {
		return fmt.Errorf("-o %s: a flight window is written zstd-compressed: give a name ending in .zst, such as incident.jsonl.zst", out)
	}
	if err := wf.checkDir(); err != nil {
		return err
	}
	since, until, err := wf.window(time.Now())
	if err != nil {
		return err
	}
	if err := outfile.Check(out, force); err != nil {
		return err
	}
	f, err := outfile.Create(out, force)
	if err != nil {
		return err
	}
	if err := flight.Window(wf.dir, since, until, nil, f); err != nil {
		f.Abort()
		return wf.windowError(err, since, until)
	}
	if err := f.Sync(); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", out, unwrapPath(err))
	}
	if err := f.Close(); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", out, unwrapPath(err))
	}
	if err := f.Commit(); err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sendtrace: wrote the flight window %s to %s to %s (%d bytes)\n", since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339), format.Printable(out), st.Size())
	return nil
}
