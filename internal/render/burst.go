package render

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

// BurstEvery is how often a connection may print a line of retransmits
// or of drops in the text stream. A bulk transfer under loss retransmits
// hundreds of times a second; one line per second per connection keeps
// the stream on a screen while JSON and recordings keep every event.
const BurstEvery = time.Second

// burstKey is one connection and one kind of event. A socket without a
// cookie (none was read) is told apart by its owner and addresses.
type burstKey struct {
	kind     events.Kind
	cookie   uint64
	pid      uint32
	src, dst netip.AddrPort
}

func burstKeyOf(e *events.Event) burstKey {
	if e.Cookie != 0 {
		return burstKey{kind: e.Kind, cookie: e.Cookie}
	}
	return burstKey{kind: e.Kind, pid: e.PID, src: e.Src, dst: e.Dst}
}

// burst sums one connection's retransmits or drops since its last line.
type burst struct {
	since  time.Time // time of the connection's last line of this kind
	last   events.Event
	n      uint64 // events summed
	bytes  uint64
	segs   events.RetransSegs
	failed map[string]uint64 // retransmits the kernel did not send, by err
	drops  map[string]uint64 // drops by reason
	dsegs  uint64            // dropped segments
}

// bursts holds the connections whose retransmits or drops are being
// summed. The first event of a quiet connection prints at once, in full:
// a single RTO is news the engineer should see the moment it happens, with
// its backoff and RTO. Events within BurstEvery of a connection's last
// line are summed, and the sum prints when the second is over (on the
// next event, or the flush that follows the stream going quiet).
type bursts struct {
	m map[burstKey]*burst
}

// aggregated says whether e's kind is summed per connection.
func aggregated(e *events.Event) bool {
	return e.Kind == events.KindRetransmit || e.Kind == events.KindDrop
}

// add takes one retransmit or drop. It returns true when e must print
// in full now; due is the sum of an earlier second to print before it.
func (bs *bursts) add(e *events.Event) (full bool, due *burst) {
	if bs.m == nil {
		bs.m = map[burstKey]*burst{}
	}
	k := burstKeyOf(e)
	b := bs.m[k]
	switch {
	case b == nil || b.n == 0 && !e.Time.Before(b.since.Add(BurstEvery)):
		bs.m[k] = &burst{since: e.Time}
		return true, nil
	case b.n > 0 && !e.Time.Before(b.since.Add(BurstEvery)):
		done := *b
		*b = burst{since: e.Time}
		b.sum(e)
		return false, &done
	}
	b.sum(e)
	return false, nil
}

func (b *burst) sum(e *events.Event) {
	b.last = *e
	b.n++
	b.bytes += uint64(e.Bytes)
	switch e.Kind {
	case events.KindRetransmit:
		b.segs.Observe(e)
		if e.RetransErr != 0 {
			if b.failed == nil {
				b.failed = map[string]uint64{}
			}
			b.failed[events.RetransErrName(e.RetransErr)]++
		}
	case events.KindDrop:
		if b.drops == nil {
			b.drops = map[string]uint64{}
		}
		b.drops[format.Printable(e.DropReason)]++
		b.dsegs += uint64(e.Segs)
	}
}

// take removes and returns the sums of e's connection, so that they print
// before e: a close or an error report must not come before the
// retransmits that led to it. A connection that closed is forgotten.
func (bs *bursts) take(e *events.Event) []burst {
	if len(bs.m) == 0 {
		return nil
	}
	var out []burst
	for _, kind := range [...]events.Kind{events.KindRetransmit, events.KindDrop} {
		k := burstKeyOf(e)
		k.kind = kind
		b := bs.m[k]
		if b == nil {
			continue
		}
		if b.n > 0 {
			out = append(out, *b)
			at := e.Time
			if at.IsZero() { // a diagnosis: it has no time of its own
				at = b.last.Time
			}
			*b = burst{since: at}
		}
		if e.State == events.StateClose {
			delete(bs.m, k)
		}
	}
	return out
}

// due removes and returns the sums whose second is over at now (all of
// them when now is zero), oldest first, and forgets connections that have
// been quiet for a whole second, so that memory follows the connections
// that are retransmitting, not every one ever seen.
func (bs *bursts) due(now time.Time) []burst {
	var out []burst
	for k, b := range bs.m {
		over := now.IsZero() || !now.Before(b.since.Add(BurstEvery))
		switch {
		case b.n > 0 && over:
			out = append(out, *b)
			*b = burst{since: now}
			if now.IsZero() {
				delete(bs.m, k)
			}
		case b.n == 0 && over:
			delete(bs.m, k)
		}
	}
	slices.SortFunc(out, func(a, b burst) int {
		return cmp.Or(a.last.Time.Compare(b.last.Time), cmp.Compare(a.last.Cookie, b.last.Cookie), cmp.Compare(a.last.Kind, b.last.Kind))
	})
	return out
}

// appendBurstLine appends the line of a connection's summed retransmits
// or drops, in the stream's columns: the newest event's time, owner,
// addresses and state, the bytes of them all, then what they were:
//
//	37 segments (rto 2, fast 30, tlp 5) in 12 retransmits over 1s; not sent: EBUSY 1
//	40 drops (NETFILTER_DROP 38, QDISC_DROP 2), 40 segments over 1s
func appendBurstLine(b []byte, s *burst, loc *time.Location) []byte {
	var num [20]byte
	b = appendColumns(b, &s.last, loc, strconv.AppendUint(num[:0], s.bytes, 10))
	detailStart := len(b)
	switch s.last.Kind {
	case events.KindRetransmit:
		b = strconv.AppendUint(b, s.segs.Total(), 10)
		b = append(b, " segments"...)
		if s.segs.Total() > 0 {
			b = append(b, " ("...)
			b = s.segs.AppendKinds(b)
			b = append(b, ')')
		}
		b = append(b, " in "...)
		b = strconv.AppendUint(b, s.n, 10)
		b = append(b, " retransmits over "...)
		b = append(b, format.Duration(s.last.Time.Sub(s.since))...)
		if len(s.failed) > 0 {
			b = append(b, "; not sent: "...)
			b = appendCounts(b, s.failed)
		}
	case events.KindDrop:
		b = strconv.AppendUint(b, s.n, 10)
		b = append(b, " drops ("...)
		b = appendCounts(b, s.drops)
		b = append(b, "), "...)
		b = strconv.AppendUint(b, s.dsegs, 10)
		b = append(b, " segments over "...)
		b = append(b, format.Duration(s.last.Time.Sub(s.since))...)
	}
	return endLine(b, &s.last, detailStart)
}

// appendCounts appends "NAME n, NAME n", the largest first.
func appendCounts(b []byte, m map[string]uint64) []byte {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.SortFunc(names, func(x, y string) int { return cmp.Or(cmp.Compare(m[y], m[x]), cmp.Compare(x, y)) })
	for i, n := range names {
		if i > 0 {
			b = append(b, ", "...)
		}
		label := n
		if label == "" {
			label = "unknown"
		}
		b = append(b, label...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, m[n], 10)
	}
	return b
}
