package events

import (
	"net/netip"
	"slices"
)

// Traffic is what one destination was sent, from the kernel's per-socket
// counters. Sends and Bytes are nil when the session did not count
// successful sends, which is different from zero.
type Traffic struct {
	Dst         netip.AddrPort
	Sends       *uint64 // successful send calls
	Bytes       *uint64 // bytes those calls handed to the kernel
	DataSegs    uint64  // TCP data segments sent
	RetransSegs uint64  // TCP segments retransmitted
}

// Dest is what happened to one destination: the failures and kernel
// events seen in the stream, and its traffic when the kernel counted it.
type Dest struct {
	Dst          netip.AddrPort
	SendErrors   uint64
	SendErrno    map[int32]uint64
	Retransmits  uint64 // retransmit events, not segments
	RetransBytes uint64
	// Retrans is the retransmitted segments by kind: from the events,
	// until ApplyTotals replaces them with the kernel's exact counts
	// (untraced segments included), and then RetransExact is set.
	Retrans      RetransSegs
	RetransExact bool
	ErrorReports uint64
	ResetsRecv   uint64
	ResetsSent   uint64
	Traffic      *Traffic
}

// Resets counts the resets in both directions.
func (d *Dest) Resets() uint64 { return d.ResetsRecv + d.ResetsSent }

// Dests aggregates events per destination. The summary, the recording's
// footer and the report all use it, so they agree.
type Dests struct {
	m map[netip.AddrPort]*Dest
}

// Get returns the destination's entry, creating it.
func (ds *Dests) Get(dst netip.AddrPort) *Dest {
	if ds.m == nil {
		ds.m = make(map[netip.AddrPort]*Dest)
	}
	d := ds.m[dst]
	if d == nil {
		d = &Dest{Dst: dst, SendErrno: map[int32]uint64{}}
		ds.m[dst] = d
	}
	return d
}

// Observe counts one event.
func (ds *Dests) Observe(e *Event) {
	switch e.Kind {
	case KindSendError:
		d := ds.Get(e.Dst)
		d.SendErrors++
		d.SendErrno[e.Errno]++
	case KindRetransmit:
		d := ds.Get(e.Dst)
		d.Retransmits++
		d.RetransBytes += uint64(e.Bytes)
		if !d.RetransExact {
			d.Retrans.Observe(e)
		}
	case KindErrorReport:
		ds.Get(e.Dst).ErrorReports++
	case KindReceiveReset:
		ds.Get(e.Dst).ResetsRecv++
	case KindSendReset:
		ds.Get(e.Dst).ResetsSent++
	}
}

// AddTraffic attaches the kernel's traffic counters; entries for the same
// destination (several sockets or owners) are added up.
func (ds *Dests) AddTraffic(ts []Traffic) {
	for _, t := range ts {
		d := ds.Get(t.Dst)
		if d.Traffic == nil {
			d.Traffic = &Traffic{Dst: t.Dst}
		}
		d.Traffic.Sends = addOpt(d.Traffic.Sends, t.Sends)
		d.Traffic.Bytes = addOpt(d.Traffic.Bytes, t.Bytes)
		d.Traffic.DataSegs += t.DataSegs
		d.Traffic.RetransSegs += t.RetransSegs
	}
}

// ApplyTotals replaces every destination's retransmitted segments with
// the kernel's exact counts, which add up to TcpRetransSegs where the
// events may not (lost events, segments counted without a tracepoint).
// Destinations the kernel counted retransmits for but no event named are
// added.
func (ds *Dests) ApplyTotals(t *Totals) {
	if !t.HasRetransSegs() {
		return
	}
	for _, d := range ds.m {
		d.Retrans, d.RetransExact = RetransSegs{}, true
	}
	for dst, r := range t.RetransSegsByDst() {
		d := ds.Get(dst)
		d.Retrans, d.RetransExact = *r, true
	}
}

func addOpt(a, b *uint64) *uint64 {
	if b == nil {
		return a
	}
	v := *b
	if a != nil {
		v += *a
	}
	return &v
}

// Len is the number of destinations.
func (ds *Dests) Len() int { return len(ds.m) }

// Sorted returns every destination in address order.
func (ds *Dests) Sorted() []*Dest {
	out := make([]*Dest, 0, len(ds.m))
	for _, d := range ds.m {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *Dest) int { return a.Dst.Compare(b.Dst) })
	return out
}

// AddrString is an address as the JSON schema and recordings key it: ""
// when unknown.
func AddrString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	return ap.String()
}
