// Package host reads what a session's description needs from the Linux
// host it runs on: clocks, names, and the sysctls of a network namespace.
package host

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/session"
)

// MonoNow returns CLOCK_MONOTONIC in nanoseconds, the clock of the events'
// mono_ns (bpf_ktime_get_ns).
func MonoNow() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}

// BootWall returns the wall-clock time of CLOCK_MONOTONIC zero, measured
// once, so that every event's wall time is BootWall + its mono_ns.
func BootWall() time.Time {
	now := time.Now()
	return now.Add(-time.Duration(MonoNow())).UTC()
}

// KernelRelease is uname -r.
func KernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// Describe fills a session's description from this host, the options and
// the hook plan. Sysctls are added by the caller, which knows whose
// namespace to read.
func Describe(version string, opts session.Options, plan session.Plan, boot time.Time) *session.Description {
	d := &session.Description{
		SendtraceVersion: version,
		KernelRelease:    KernelRelease(),
		BootTime:         boot.UTC(),
		StartTime:        time.Now().UTC(),
		StartMonoNS:      MonoNow(),
		Filters:          opts.Filters,
		Hooks:            plan.ForRecording(),
		Sysctls:          map[string]string{},
	}
	d.Hostname, _ = os.Hostname()
	if opts.Duration > 0 {
		d.Duration = opts.Duration.String()
	}
	if d.BootTime.IsZero() {
		d.BootTime = BootWall()
	}
	return d
}
