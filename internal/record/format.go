// Package record writes and reads sendtrace recordings: JSON Lines files
// whose first record is a header describing the host and the session, whose
// middle records are events in the same schema as `sendtrace -o json`, and
// whose last record is a footer with the kernel's exact totals.
//
// Every record carries a "kind", so standard tools can pick records apart
// (`jq 'select(.kind=="send_error")'`) without knowing the format.
package record

import (
	"net/netip"
	"sort"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/tracer"
)

const (
	// FormatName tells a recording apart from any other JSON Lines file
	// whose first line happens to have kind "header".
	FormatName = "sendtrace-recording"
	// FormatVersion changes only when a reader of the previous version would
	// misread a new file. Adding fields does not change it.
	FormatVersion = 1
	// EventSchemaVersion is the version of docs/json-schema.md that event
	// records follow.
	EventSchemaVersion = 1

	KindHeader = "header"
	KindFooter = "footer"
)

// Header is the first record of a recording. It holds everything needed to
// interpret the events later on another machine: where and when they were
// recorded, with which filters and hooks, and under which sysctls.
type Header struct {
	Kind             string `json:"kind"`
	Format           string `json:"format"`
	FormatVersion    int    `json:"format_version"`
	SchemaVersion    int    `json:"schema_version"`
	SendtraceVersion string `json:"sendtrace_version"`
	Hostname         string `json:"hostname"`
	KernelRelease    string `json:"kernel_release"`
	// BootTime is the wall-clock time of CLOCK_MONOTONIC zero, so that any
	// mono_ns in the file converts to wall time as BootTime + mono_ns.
	BootTime    time.Time `json:"boot_time"`
	StartTime   time.Time `json:"start_time"`
	StartMonoNS uint64    `json:"start_mono_ns"`
	// Duration is what --duration asked for; empty when the recording ran
	// until it was stopped.
	Duration string  `json:"duration,omitempty"`
	Filters  Filters `json:"filters"`
	Hooks    []Hook  `json:"hooks"`
	Netns    Netns   `json:"netns"`
	// Sysctls maps dotted names ("net.ipv4.tcp_retries2") to their values
	// with runs of whitespace collapsed to one space ("4096 16384 4194304").
	Sysctls map[string]string `json:"sysctls"`
	// SysctlsMissing lists the names that could not be read, so that a
	// sysctl absent on one kernel is not mistaken for a difference in diff.
	SysctlsMissing []string `json:"sysctls_missing,omitempty"`
}

// Filters is tracer.Filters in a form that reads well in JSON.
type Filters struct {
	PIDs    []uint32 `json:"pids,omitempty"`
	Comms   []string `json:"comms,omitempty"`
	Cgroups []uint64 `json:"cgroups,omitempty"`
	Dsts    []string `json:"dsts,omitempty"`
	Ports   []uint16 `json:"ports,omitempty"`
	Errnos  []string `json:"errnos,omitempty"`
}

// FiltersFrom converts the tracer's filters for the header.
func FiltersFrom(f tracer.Filters) Filters {
	out := Filters{PIDs: f.PIDs, Comms: f.Comms, Cgroups: f.Cgroups, Ports: f.Ports}
	for _, p := range f.Dsts {
		out.Dsts = append(out.Dsts, p.String())
	}
	for _, n := range f.Errnos {
		out.Errnos = append(out.Errnos, events.ErrnoName(n))
	}
	return out
}

// Hook is the planner's choice for one layer, as tracer.Hook.
type Hook struct {
	Layer  string `json:"layer"`
	Hook   string `json:"hook"`
	Active bool   `json:"active"`
	Off    bool   `json:"off,omitempty"` // not hooked by choice (--no-syscall-layer)
	Why    string `json:"why,omitempty"`
}

// HooksFrom converts the session's hook plan for the header.
func HooksFrom(hs []tracer.Hook) []Hook {
	out := make([]Hook, 0, len(hs))
	for _, h := range hs {
		out = append(out, Hook{Layer: h.Layer, Hook: h.Hook, Active: h.Active, Off: h.Off, Why: h.Why})
	}
	return out
}

// Netns says which network namespace the sysctls were read in.
type Netns struct {
	// PID is the process whose namespace was used; 0 means the recorder's
	// own namespace.
	PID   uint32 `json:"pid,omitempty"`
	Inode uint64 `json:"inode,omitempty"`
	// Note explains a choice the reader should know about, such as
	// filtered processes living in different namespaces.
	Note string `json:"note,omitempty"`
}

// Footer is the last record of a recording that was stopped cleanly.
type Footer struct {
	Kind        string    `json:"kind"`
	EndTime     time.Time `json:"end_time"`
	EndMonoNS   uint64    `json:"end_mono_ns"`
	DurationSec float64   `json:"duration_s"`
	// Events is the number of event records in the file.
	Events uint64 `json:"events"`
	// ByKind and ByErrno are the kernel's exact counters, which do not
	// suffer from ring-buffer loss. ByErrno is keyed by kind, then errno
	// name.
	ByKind  map[string]uint64            `json:"by_kind"`
	ByErrno map[string]map[string]uint64 `json:"by_errno"`
	// Totals are the kernel's counters at their finest grain, so that the
	// live summary tables can be rebuilt exactly from the file.
	Totals []TotalsRow `json:"totals"`
	// DestinationsSource is "kernel" when sends and bytes per destination
	// come from the kernel's per-socket counters, or "events" when only the
	// events in the file were available; then sends and bytes are null.
	DestinationsSource string      `json:"destinations_source"`
	Destinations       []DestStats `json:"destinations"`
	Lost               Lost        `json:"lost"`
}

// TotalsRow is one entry of events.Totals.
type TotalsRow struct {
	PID       uint32 `json:"pid"`
	Kind      string `json:"kind"`
	Errno     int32  `json:"errno"`
	ErrnoName string `json:"errno_name,omitempty"`
	Count     uint64 `json:"count"`
	Bytes     uint64 `json:"bytes"`
}

// DestStats is the traffic to one destination. With the kernel as source,
// Sends counts successful send calls (the kernel counts them per socket
// while recording) and Bytes the bytes those calls handed to the kernel.
// DataSegs is TCP's own count of data segments sent, and RetransSegs its
// count of retransmitted segments. Sends and Bytes are nil when they were
// not counted, which is different from zero.
type DestStats struct {
	Dst         string  `json:"dst"`
	Sends       *uint64 `json:"sends"`
	Bytes       *uint64 `json:"bytes"`
	DataSegs    uint64  `json:"data_segs,omitempty"`
	RetransSegs uint64  `json:"retrans_segs"`
}

// Lost counts events that did not reach the file.
type Lost struct {
	Kernel uint64 `json:"kernel"`
	User   uint64 `json:"user"`
}

// NewFooter builds a footer from the kernel's totals. dests may be nil.
func NewFooter(end time.Time, endMono uint64, h *Header, written uint64, t *events.Totals, dests []DestStats, destSource string) *Footer {
	f := &Footer{
		Kind:               KindFooter,
		EndTime:            end.UTC(),
		EndMonoNS:          endMono,
		Events:             written,
		ByKind:             map[string]uint64{},
		ByErrno:            map[string]map[string]uint64{},
		Totals:             []TotalsRow{},
		DestinationsSource: destSource,
		Destinations:       dests,
	}
	if f.Destinations == nil {
		f.Destinations = []DestStats{}
	}
	if h != nil && endMono >= h.StartMonoNS {
		f.DurationSec = float64(endMono-h.StartMonoNS) / 1e9
	}
	if t == nil {
		return f
	}
	f.Lost = Lost{Kernel: t.LostKernel, User: t.LostUser}
	for k, v := range t.ByKey {
		kind := k.Kind.String()
		f.ByKind[kind] += v.Count
		if k.Errno != 0 {
			m := f.ByErrno[kind]
			if m == nil {
				m = map[string]uint64{}
				f.ByErrno[kind] = m
			}
			m[events.ErrnoName(k.Errno)] += v.Count
		}
		f.Totals = append(f.Totals, TotalsRow{
			PID: k.PID, Kind: kind, Errno: k.Errno, ErrnoName: events.ErrnoName(k.Errno),
			Count: v.Count, Bytes: v.Bytes,
		})
	}
	// Map order is random; a stable order keeps recordings of the same
	// totals byte-identical and easy to compare by eye.
	sort.Slice(f.Totals, func(i, j int) bool {
		a, b := f.Totals[i], f.Totals[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Errno != b.Errno {
			return a.Errno < b.Errno
		}
		return a.PID < b.PID
	})
	return f
}

// EventsTotals turns the footer's rows back into events.Totals, as the
// tracer returned them at the end of the recording.
func (f *Footer) EventsTotals() *events.Totals {
	t := &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}, LostKernel: f.Lost.Kernel, LostUser: f.Lost.User}
	for _, r := range f.Totals {
		k, _ := events.ParseKind(r.Kind)
		key := events.TotalsKey{PID: r.PID, Kind: k, Errno: r.Errno}
		v := t.ByKey[key]
		v.Count += r.Count
		v.Bytes += r.Bytes
		t.ByKey[key] = v
	}
	return t
}

// DestKey is how destinations are keyed throughout: the address and port
// as the event schema prints them.
func DestKey(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	return ap.String()
}
