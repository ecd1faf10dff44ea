package record

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/tracer"
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

// BootTime estimates the wall-clock time of CLOCK_MONOTONIC zero. It is
// used when the session does not supply one.
func BootTime() time.Time {
	now := time.Now()
	return now.Add(-time.Duration(MonoNow())).UTC()
}

// HeaderOptions are what the recorder knows when the session starts.
type HeaderOptions struct {
	Version  string
	Filters  tracer.Filters
	Duration time.Duration
	Session  *tracer.Session
	Sysctls  *Snapshot
}

// NewHeader fills a header from the host, the session and the sysctls.
func NewHeader(o HeaderOptions) *Header {
	h := &Header{
		SendtraceVersion: o.Version,
		StartTime:        time.Now().UTC(),
		StartMonoNS:      MonoNow(),
		Filters:          FiltersFrom(o.Filters),
		Hooks:            []Hook{},
		Sysctls:          map[string]string{},
	}
	h.Hostname, _ = os.Hostname()
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		h.KernelRelease = unix.ByteSliceToString(u.Release[:])
	}
	if o.Duration > 0 {
		h.Duration = o.Duration.String()
	}
	if o.Session != nil {
		h.Hooks = HooksFrom(o.Session.Hooks)
		h.BootTime = o.Session.BootTime.UTC()
	}
	if h.BootTime.IsZero() {
		h.BootTime = BootTime()
	}
	if o.Sysctls != nil {
		h.Sysctls = o.Sysctls.Values
		h.SysctlsMissing = o.Sysctls.Missing
		h.Netns = o.Sysctls.Netns
	}
	if len(o.Filters.PIDs) > 1 && h.Netns.PID != 0 {
		for _, p := range o.Filters.PIDs[1:] {
			if ino := NetnsInode(p); ino != 0 && ino != h.Netns.Inode {
				h.Netns.Note = fmt.Sprintf("sysctls are from the namespace of pid %d; pid %d is in another namespace", h.Netns.PID, p)
				break
			}
		}
	}
	return h
}
