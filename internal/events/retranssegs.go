package events

import (
	"net/netip"
	"strconv"
)

// RetransSegs counts retransmitted segments by kind (indexed by
// RetransKind), the unit of the kernel's TcpRetransSegs: one retransmit
// event under GSO carries many segments, so counting events undercounts a
// bulk transfer by an order of magnitude.
type RetransSegs [len(retransKindNames)]uint64

// Add counts n segments of kind k; an unknown kind counts as untraced, so
// the total stays whole.
func (r *RetransSegs) Add(k RetransKind, n uint64) {
	if int(k) >= len(r) {
		k = RetransUntraced
	}
	r[k] += n
}

// AddAll adds another breakdown.
func (r *RetransSegs) AddAll(o *RetransSegs) {
	for i := range r {
		r[i] += o[i]
	}
}

// Total is the segments of every kind.
func (r *RetransSegs) Total() uint64 {
	var n uint64
	for _, v := range r {
		n += v
	}
	return n
}

// ByName returns the kinds that have segments, by name ("unknown" for a
// retransmit without a kind).
func (r *RetransSegs) ByName() map[string]uint64 {
	m := map[string]uint64{}
	for i, v := range r {
		if v != 0 {
			m[retransKindLabel(RetransKind(i))] = v
		}
	}
	return m
}

// AppendKinds appends the breakdown as "rto 2, fast 30, tlp 5", kinds in
// their fixed order, those without segments left out.
func (r *RetransSegs) AppendKinds(b []byte) []byte {
	first := true
	for i, v := range r {
		if v == 0 {
			continue
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = append(b, retransKindLabel(RetransKind(i))...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, v, 10)
	}
	return b
}

// Kinds is AppendKinds as a string, "-" when there are none.
func (r *RetransSegs) Kinds() string {
	if r.Total() == 0 {
		return "-"
	}
	return string(r.AppendKinds(nil))
}

func retransKindLabel(k RetransKind) string {
	if k == RetransNone {
		return "unknown"
	}
	return k.String()
}

// Observe adds the segments a retransmit event added to the kernel's
// counter.
func (r *RetransSegs) Observe(e *Event) {
	if e.Kind == KindRetransmit {
		r.Add(e.RetransKind, EventSegs(e))
	}
}

// EventSegs is the segments a retransmit event added to TcpRetransSegs.
// Every retransmit sendtrace streams has a kind; one without (a file
// recorded before segments were) counts as the one segment it at least
// was, as such files counted retransmits.
func EventSegs(e *Event) uint64 {
	if e.RetransKind == RetransNone && e.Segs == 0 && e.RetransErr == 0 {
		return 1
	}
	return uint64(e.Segs)
}

// RetransSegsByPID sums the kernel's retransmitted segments per process,
// untraced ones included: the figures that add up to TcpRetransSegs.
func (t *Totals) RetransSegsByPID() map[uint32]*RetransSegs {
	return retransSegsBy(t, func(k TotalsKey) uint32 { return k.PID })
}

// RetransSegsByDst sums the kernel's retransmitted segments per
// destination, untraced ones included.
func (t *Totals) RetransSegsByDst() map[netip.AddrPort]*RetransSegs {
	return retransSegsBy(t, func(k TotalsKey) netip.AddrPort { return k.Dst })
}

func retransSegsBy[K comparable](t *Totals, key func(TotalsKey) K) map[K]*RetransSegs {
	out := map[K]*RetransSegs{}
	t.eachRetrans(func(k TotalsKey, segs uint64) {
		r := out[key(k)]
		if r == nil {
			r = new(RetransSegs)
			out[key(k)] = r
		}
		r.Add(retransDetail(k.Detail), segs)
	})
	return out
}

// RetransSegsAll sums the kernel's retransmitted segments by kind.
func (t *Totals) RetransSegsAll() RetransSegs {
	var r RetransSegs
	t.eachRetrans(func(k TotalsKey, segs uint64) { r.Add(retransDetail(k.Detail), segs) })
	return r
}

func (t *Totals) eachRetrans(f func(TotalsKey, uint64)) {
	if t == nil {
		return
	}
	for k, v := range t.ByKey {
		if k.Kind == KindRetransmit && v.Segs != 0 {
			f(k, v.Segs)
		}
	}
}

func retransDetail(s string) RetransKind {
	k, _ := ParseRetransKind(s)
	return k
}

// HasRetransSegs says whether the totals count retransmits in segments:
// a recording made before they did has retransmit counts without them.
func (t *Totals) HasRetransSegs() bool {
	if t == nil || len(t.ByKey) == 0 {
		return false
	}
	return t.Sum(KindRetransmit) == 0 || t.SumSegs(KindRetransmit) > 0
}
