package flight

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

// ParseTime reads a window's edge as a person gives it: a duration ago
// (15m, 2h30m) or an RFC 3339 time. flag names it in the error.
func ParseTime(flag, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("invalid %s %q: give a duration ago, such as 15m, or an RFC 3339 time, such as %s", flag, s, now.UTC().Truncate(time.Minute).Format(time.RFC3339))
}

// Filter keeps the events of the workloads, processes and destinations
// it names; an empty field keeps every event. The kernel's filters of a
// live session name running processes; these name what the recording
// saw, so a process that is gone can still be picked.
type Filter struct {
	PIDs       []uint32
	Comms      []string
	Dsts       []netip.Prefix
	Ports      []uint16
	Containers []string // container ids or prefixes of them
	Pods       []string // NAMESPACE/NAME
	Units      []string // systemd units (nginx.service)
}

// Empty says whether f keeps every event.
func (f *Filter) Empty() bool {
	return len(f.PIDs)+len(f.Comms)+len(f.Dsts)+len(f.Ports)+len(f.Containers)+len(f.Pods)+len(f.Units) == 0
}

// Match says whether f keeps e. Fields are and-ed; the values of one
// field are or-ed, as the live filters are.
func (f *Filter) Match(e *events.Event) bool {
	if len(f.PIDs) > 0 && !slices.Contains(f.PIDs, e.PID) {
		return false
	}
	if len(f.Comms) > 0 && !slices.Contains(f.Comms, e.Comm) {
		return false
	}
	if len(f.Ports) > 0 && !slices.Contains(f.Ports, e.Dst.Port()) {
		return false
	}
	if len(f.Dsts) > 0 && !slices.ContainsFunc(f.Dsts, func(p netip.Prefix) bool { return p.Contains(e.Dst.Addr().Unmap()) }) {
		return false
	}
	if len(f.Containers)+len(f.Pods)+len(f.Units) == 0 {
		return true
	}
	w := e.Workload
	if w == nil {
		return false
	}
	if len(f.Containers) > 0 && (w.ID == "" || !slices.ContainsFunc(f.Containers, func(c string) bool { return strings.HasPrefix(w.ID, c) })) {
		return false
	}
	if len(f.Pods) > 0 && !slices.Contains(f.Pods, w.Namespace+"/"+w.Pod) {
		return false
	}
	if len(f.Units) > 0 && !slices.Contains(f.Units, w.Unit) {
		return false
	}
	return true
}

// Func is Match as Window takes it: nil when f keeps every event.
func (f *Filter) Func() func(*events.Event) bool {
	if f == nil || f.Empty() {
		return nil
	}
	return f.Match
}
