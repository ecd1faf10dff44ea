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

// Failures are one destination's failed sends, error reports and resets.
type Failures struct {
	SendErrors   uint64
	ErrorReports uint64
	ResetsRecv   uint64
	ResetsSent   uint64
}

// Resets counts the resets in both directions.
func (f *Failures) Resets() uint64 { return f.ResetsRecv + f.ResetsSent }

// IsFailure says whether Failures count events of kind k.
func IsFailure(k Kind) bool {
	switch k {
	case KindSendError, KindErrorReport, KindReceiveReset, KindSendReset:
		return true
	}
	return false
}

// of is the count of kind k, which IsFailure.
func (f *Failures) of(k Kind) *uint64 {
	switch k {
	case KindSendError:
		return &f.SendErrors
	case KindErrorReport:
		return &f.ErrorReports
	case KindReceiveReset:
		return &f.ResetsRecv
	}
	return &f.ResetsSent
}

// Dest is what happened to one destination: the failures and kernel
// events, and its traffic when the kernel counted it.
type Dest struct {
	Dst netip.AddrPort
	// Failures are counted from the events until ApplyTotals replaces
	// them with the kernel's exact counts, and then Exact is set.
	// Received always counts the events that arrived, which is fewer
	// when the ring buffer was full.
	Failures
	Received     Failures
	Exact        bool
	SendErrno    map[int32]uint64 // exact with Failures
	Retransmits  uint64           // retransmit events, not segments
	RetransBytes uint64
	// Retrans is the retransmitted segments by kind: from the events,
	// until ApplyTotals replaces them with the kernel's exact counts
	// (untraced segments included), and then RetransExact is set.
	Retrans      RetransSegs
	RetransExact bool
	Traffic      *Traffic
}

// Short says whether fewer events arrived than the kernel counted.
func (d *Dest) Short() bool { return d.Exact && d.Received != d.Failures }

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
	if e.Kind == KindRetransmit {
		d := ds.Get(e.Dst)
		d.Retransmits++
		d.RetransBytes += uint64(e.Bytes)
		if !d.RetransExact {
			d.Retrans.Observe(e)
		}
		return
	}
	if !IsFailure(e.Kind) {
		return
	}
	d := ds.Get(e.Dst)
	*d.Received.of(e.Kind)++
	if !d.Exact {
		*d.Failures.of(e.Kind)++
		if e.Kind == KindSendError {
			d.SendErrno[e.Errno]++
		}
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

// ApplyTotals replaces every destination's failures and retransmitted
// segments with the kernel's exact counts, which count every event where
// the stream may not (lost events; for segments, those counted without a
// tracepoint, so that they add up to TcpRetransSegs). Destinations the
// kernel counted for but no event named are added. Totals without
// destinations (older recordings) leave the events' figures.
func (ds *Dests) ApplyTotals(t *Totals) {
	byDst := t.HasDsts()
	if byDst {
		ds.applyFailures(t)
	}
	ds.applyRetrans(t)
	// A destination named only by its retransmits failed in no other
	// way, as exactly as the kernel counts.
	for _, d := range ds.m {
		d.Exact = d.Exact || byDst
	}
}

func (ds *Dests) applyFailures(t *Totals) {
	for _, d := range ds.m {
		d.Failures, d.SendErrno = Failures{}, map[int32]uint64{}
	}
	for k, v := range t.ByKey {
		if !IsFailure(k.Kind) {
			continue
		}
		d := ds.Get(k.Dst)
		*d.Failures.of(k.Kind) += v.Count
		if k.Kind == KindSendError {
			d.SendErrno[k.Errno] += v.Count
		}
	}
}

func (ds *Dests) applyRetrans(t *Totals) {
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

// HasDsts says whether the totals are keyed by destination: a recording
// made before they were has every count under the unknown destination.
func (t *Totals) HasDsts() bool {
	if t == nil {
		return false
	}
	for k := range t.ByKey {
		if k.Dst.IsValid() {
			return true
		}
	}
	return false
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
