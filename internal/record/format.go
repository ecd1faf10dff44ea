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
	"github.com/sendtrace/sendtrace/internal/session"
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
	// KindDiagnosis records are what the live session concluded, written
	// after the event that concluded them.
	KindDiagnosis = "diagnosis"
)

// Header is the first record of a recording. It holds everything needed to
// interpret the events later on another machine: where and when they were
// recorded, with which filters and hooks, and under which sysctls.
type Header struct {
	Kind          string `json:"kind"`
	Format        string `json:"format"`
	FormatVersion int    `json:"format_version"`
	SchemaVersion int    `json:"schema_version"`
	session.Description
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
	// RetransSegsByKind is the kernel's retransmitted segments by kind
	// (rto, fast, tlp, syn, synack, untraced), the unit of TcpRetransSegs;
	// by_kind counts retransmit events. Absent in older recordings.
	RetransSegsByKind map[string]uint64 `json:"retrans_segs_by_kind,omitempty"`
	// Totals are the kernel's counters at their finest grain, so that the
	// live summary tables can be rebuilt exactly from the file.
	Totals []TotalsRow `json:"totals"`
	// DestinationsSource is "kernel" when sends and bytes per destination
	// come from the kernel's per-socket counters, or "events" when only the
	// events in the file were available; then sends and bytes are null.
	DestinationsSource string      `json:"destinations_source"`
	Destinations       []DestStats `json:"destinations"`
	Lost               Lost        `json:"lost"`
	// Namespaces are the sysctls of the network namespaces that events
	// came from, other than the header's, read when the first event from
	// each was seen. Absent in older recordings.
	Namespaces []session.NetnsSysctls `json:"netns_sysctls,omitempty"`
	// NetnsCounters are the traced network namespaces' own counters
	// (nstat's), read as the recording started and as it ended. Absent
	// in older recordings.
	NetnsCounters []session.NetnsCounters `json:"netns_counters,omitempty"`
	// Window is set in a recording cut from serve's flight recorder: it
	// says which of the totals above are the kernel's.
	Window *FlightWindow `json:"flight_window,omitempty"`
}

// FlightWindow describes a recording cut from a flight directory. Its
// totals are the kernel's for the segments wholly inside the window;
// for the others (cut by the window's edges, without a footer, or read
// through a filter) they are counted from the events in the window.
type FlightWindow struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Segments is how many segments the window read; KernelSegments how
	// many of them gave their kernel totals.
	Segments       int `json:"segments"`
	KernelSegments int `json:"kernel_segments"`
	// Unfinished segments have no footer: the one serve is writing, or
	// one cut short when serve was killed.
	Unfinished int `json:"unfinished_segments,omitempty"`
	// EventsCounted is how many events were counted from the events.
	EventsCounted uint64 `json:"events_counted"`
}

// TotalsRow is one entry of events.Totals. Dst, Detail (a retransmit's
// kind, a drop's reason) and Segs (retransmits: segments counted in
// TcpRetransSegs) were added later: a file without them reads as zero.
type TotalsRow struct {
	PID       uint32 `json:"pid"`
	Dst       string `json:"dst,omitempty"`
	Kind      string `json:"kind"`
	Detail    string `json:"detail,omitempty"`
	Errno     int32  `json:"errno"`
	ErrnoName string `json:"errno_name,omitempty"`
	Count     uint64 `json:"count"`
	Bytes     uint64 `json:"bytes"`
	Segs      uint64 `json:"segs,omitempty"`
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
	// Unstreamed drops were counted in the totals but held back from the
	// file by the per-socket rate limit of a drop storm.
	Unstreamed uint64 `json:"unstreamed,omitempty"`
}

// NewFooter builds a footer from the kernel's totals. dests may be nil.
func NewFooter(end *session.End, h *Header, written uint64, dests []DestStats, destSource string) *Footer {
	t := end.Totals
	f := &Footer{
		Kind:               KindFooter,
		EndTime:            end.Time.UTC(),
		EndMonoNS:          end.MonoNS,
		Events:             written,
		ByKind:             map[string]uint64{},
		ByErrno:            map[string]map[string]uint64{},
		Totals:             []TotalsRow{},
		DestinationsSource: destSource,
		Destinations:       dests,
		Namespaces:         end.Namespaces,
		NetnsCounters:      end.Counters,
	}
	if f.Destinations == nil {
		f.Destinations = []DestStats{}
	}
	if h != nil && end.MonoNS >= h.StartMonoNS {
		f.DurationSec = float64(end.MonoNS-h.StartMonoNS) / 1e9
	}
	if t == nil {
		return f
	}
	f.Lost = Lost{Kernel: t.LostKernel, User: t.LostUser, Unstreamed: t.Unstreamed}
	if segs := t.RetransSegsAll(); segs.Total() > 0 {
		f.RetransSegsByKind = segs.ByName()
	}
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
			PID: k.PID, Dst: events.AddrString(k.Dst), Kind: kind, Detail: k.Detail,
			Errno: k.Errno, ErrnoName: events.ErrnoName(k.Errno),
			Count: v.Count, Bytes: v.Bytes, Segs: v.Segs,
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
		if a.PID != b.PID {
			return a.PID < b.PID
		}
		if a.Detail != b.Detail {
			return a.Detail < b.Detail
		}
		return a.Dst < b.Dst
	})
	return f
}

// EventsTotals turns the footer's rows back into events.Totals, as the
// tracer returned them at the end of the recording.
func (f *Footer) EventsTotals() *events.Totals {
	t := &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}, LostKernel: f.Lost.Kernel, LostUser: f.Lost.User, Unstreamed: f.Lost.Unstreamed}
	for _, r := range f.Totals {
		k, _ := events.ParseKind(r.Kind)
		key := events.TotalsKey{PID: r.PID, Kind: k, Errno: r.Errno, Detail: r.Detail}
		if r.Dst != "" {
			// A destination the file cannot spell is kept with the
			// others of its process rather than dropped.
			key.Dst, _ = netip.ParseAddrPort(r.Dst)
		}
		v := t.ByKey[key]
		v.Count += r.Count
		v.Bytes += r.Bytes
		v.Segs += r.Segs
		t.ByKey[key] = v
	}
	return t
}

// dropDisconnectReports takes out of the footer the kernel's counts of
// the error reports of failed connects resetting their sockets
// (events.IsDisconnectReport), which an older sendtrace recorded and the
// reader leaves out of the events.
func (f *Footer) dropDisconnectReports() {
	kind := events.KindErrorReport.String()
	keep := f.Totals[:0]
	for _, r := range f.Totals {
		if r.Kind == kind && r.Errno == 0 {
			dst, _ := netip.ParseAddrPort(r.Dst)
			if (events.TotalsKey{Kind: events.KindErrorReport, Dst: dst}).IsDisconnectReport() {
				f.ByKind[kind] -= min(r.Count, f.ByKind[kind])
				continue
			}
		}
		keep = append(keep, r)
	}
	f.Totals = keep
}

// Traffic turns the footer's destinations back into the kernel's
// traffic counters; nil when the recording did not have the kernel's.
func (f *Footer) Traffic() []events.Traffic {
	if f.DestinationsSource != "kernel" {
		return nil
	}
	out := make([]events.Traffic, 0, len(f.Destinations))
	for _, d := range f.Destinations {
		ap, _ := netip.ParseAddrPort(d.Dst)
		out = append(out, events.Traffic{Dst: ap, Sends: d.Sends, Bytes: d.Bytes, DataSegs: d.DataSegs, RetransSegs: d.RetransSegs})
	}
	return out
}

// End is how the recorded session ended, as its footer says.
func (f *Footer) End() *session.End {
	return &session.End{Time: f.EndTime, MonoNS: f.EndMonoNS, Totals: f.EventsTotals(), Traffic: f.Traffic(), Received: f.Events}
}

// SameSession reports whether two headers describe one recording
// session: the same host, boot, and start. Two files that do are copies
// of one recording (or one is a copy cut short), never two recordings.
func SameSession(a, b *session.Description) bool {
	return a.Hostname == b.Hostname && a.BootTime.Equal(b.BootTime) &&
		a.StartTime.Equal(b.StartTime) && a.StartMonoNS == b.StartMonoNS
}
