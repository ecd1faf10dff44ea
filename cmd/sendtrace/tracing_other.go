//go:build !linux

package main

import (
	"errors"
	"io"
	"time"

	"github.com/sendtrace/sendtrace/internal/session"
)

// Off Linux, sendtrace reads recordings (report, diff); tracing needs the
// kernel it traces.
var errNeedsLinux = errors.New("tracing needs Linux: run this command on the host to trace; here, report and diff read recordings made there")

func validateFilters(*session.Filters) error { return nil }

func runLive(session.Options, string, io.Writer, io.Writer) error { return errNeedsLinux }

func runRecord(session.Options, string, bool, time.Duration, io.Writer, io.Writer) error {
	return errNeedsLinux
}

func runCheck(session.Options, string, []string, string, io.Writer) error { return errNeedsLinux }

func runServe(session.Options, serveFlags, io.Writer, io.Writer) error { return errNeedsLinux }

func (wf *workloadFilters) resolve(*session.Filters) error {
	if wf.empty() {
		return nil
	}
	return errNeedsLinux
}
