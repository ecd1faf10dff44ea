package join

import (
	"cmp"
	"slices"
	"time"
)

// Result is what joining a set of recordings found.
type Result struct {
	Recordings []*Recording
	// Overlaps holds, for each pair of recordings, the period both
	// covered, by each host's own clock. Pairs that do not overlap are
	// never joined.
	Overlaps []Overlap
	Offsets  []Offset // one per pair of recordings with joined connections
	Joined   []*Conn
	// OneEnd are handshakes inside some overlap that no other recording
	// saw: the other end was not recorded, or was filtered out.
	OneEnd []*End
	// Ambiguous are handshakes whose ISNs match more than one socket at
	// the other end: never joined.
	Ambiguous []Ambiguity
}

// Overlap is the period two recordings both covered, by A's clock.
type Overlap struct {
	A, B *Recording
	// Offset is B's clock minus A's, by which B's times are corrected
	// before they are compared with A's: estimated from the handshakes
	// whose ISNs match one socket each way, when at least two agree; 0
	// otherwise.
	Offset     time.Duration
	Start, End time.Time
	OK         bool // false: the recordings do not overlap in time
	// Outside counts the handshakes whose ISNs match one socket each way
	// that fell outside the overlap, so were not joined: a sign that the
	// hosts' clocks differ by about OutsideOffset (B's minus A's).
	Outside       int
	OutsideOffset time.Duration
}

// Ambiguity is one end with more than one candidate at the other end.
type Ambiguity struct {
	End        *End
	Candidates []*End
}

// Join matches every handshake in recs with the one socket at another
// recording whose ISNs are the same two numbers the other way round.
func Join(recs []*Recording) *Result {
	r := &Result{Recordings: recs}
	type isns struct{ snd, rcv uint32 }
	bySeq := map[isns][]*End{}
	for _, rec := range recs {
		for _, e := range rec.Ends {
			bySeq[isns{e.SndISN, e.RcvISN}] = append(bySeq[isns{e.SndISN, e.RcvISN}], e)
		}
	}
	// The hosts' clocks may differ by more than a handshake's distance
	// from a recording's edge: align each pair of recordings by the
	// handshakes whose ISNs match one socket each way, wherever they fall,
	// before asking which handshakes fall inside both. One such handshake
	// alone does not move the clocks: two must agree.
	others := func(e *End) []*End {
		var out []*End
		for _, c := range bySeq[isns{e.RcvISN, e.SndISN}] {
			if c.Rec != e.Rec {
				out = append(out, c)
			}
		}
		return out
	}
	var unique []*Conn
	for _, rec := range recs {
		for _, e := range rec.Ends {
			if cs := others(e); e.Client && len(cs) == 1 && len(others(cs[0])) == 1 {
				unique = append(unique, newConn(e, cs[0]))
			}
		}
	}
	align := &Result{Offsets: estimateOffsets(unique)}
	overlap := map[[2]*Recording]Overlap{}
	for i, a := range recs {
		for _, b := range recs[i+1:] {
			var off time.Duration
			for _, o := range align.Offsets {
				if o.Pairs >= 2 && !o.Inconsistent && (o.A == a && o.B == b || o.A == b && o.B == a) {
					off = align.offset(a, b)
				}
			}
			o := Overlap{A: a, B: b, Offset: off, Start: later(a.Start, b.Start.Add(-off)), End: earlier(a.End, b.End.Add(-off))}
			o.OK = o.Start.Before(o.End)
			overlap[[2]*Recording{a, b}], overlap[[2]*Recording{b, a}] = o, o
			r.Overlaps = append(r.Overlaps, o)
		}
	}
	inside := func(e *End, other *Recording) bool {
		o := overlap[[2]*Recording{e.Rec, other}]
		t := e.Established
		if e.Rec == o.B {
			t = t.Add(-o.Offset)
		}
		return o.OK && !t.Before(o.Start) && !t.After(o.End)
	}
	candidates := func(e *End) []*End {
		var out []*End
		for _, c := range bySeq[isns{e.RcvISN, e.SndISN}] {
			if c.Rec != e.Rec && inside(e, c.Rec) && inside(c, e.Rec) {
				out = append(out, c)
			}
		}
		return out
	}
	done := map[*End]bool{}
	for _, rec := range recs {
		for _, e := range rec.Ends {
			if done[e] {
				continue
			}
			cs := candidates(e)
			switch {
			case len(cs) == 1 && len(candidates(cs[0])) == 1:
				done[e], done[cs[0]] = true, true
				r.Joined = append(r.Joined, newConn(e, cs[0]))
			case len(cs) > 1:
				done[e] = true
				r.Ambiguous = append(r.Ambiguous, Ambiguity{End: e, Candidates: cs})
			case len(cs) == 1:
				// The other end has several candidates: it reports the
				// ambiguity.
			default:
				for _, other := range recs {
					if other != rec && inside(e, other) {
						r.OneEnd = append(r.OneEnd, e)
						break
					}
				}
			}
		}
	}
	joined := map[*End]bool{}
	for _, c := range r.Joined {
		joined[c.Ends[0]] = true
	}
	for _, c := range unique {
		if joined[c.Ends[0]] {
			continue
		}
		for k := range r.Overlaps {
			o := &r.Overlaps[k]
			if o.A == c.Ends[0].Rec && o.B == c.Ends[1].Rec || o.A == c.Ends[1].Rec && o.B == c.Ends[0].Rec {
				o.Outside++
				o.OutsideOffset = align.offset(o.A, o.B)
			}
		}
	}
	r.Offsets = estimateOffsets(r.Joined)
	for _, c := range r.Joined {
		c.offset = r.offset(c.Ends[0].Rec, c.Ends[1].Rec)
		for _, o := range r.Offsets {
			if o.A == c.Ends[0].Rec && o.B == c.Ends[1].Rec || o.A == c.Ends[1].Rec && o.B == c.Ends[0].Rec {
				c.within = o.Within
			}
		}
		c.analyse()
	}
	slices.SortStableFunc(r.Joined, func(a, b *Conn) int { return a.Ends[0].Established.Compare(b.Ends[0].Established) })
	return r
}

// Offset is how far one recording's clock is ahead of another's, from
// the handshakes they share. The server enters ESTABLISHED when the
// client's ACK arrives: after the client entered it, by one one-way
// delay, which is at most the handshake's round trip. Each handshake
// therefore bounds the offset to [t_srv - t_cli - rtt, t_srv - t_cli];
// the estimate is the middle of the intersection of those bounds. The
// upper bound is firm; the lower one assumes the ACK's transit took no
// longer than the round trip of SYN and SYN-ACK, which queueing can break.
type Offset struct {
	A, B     *Recording // B's clock minus A's
	Estimate time.Duration
	Within   time.Duration // ± this much
	Pairs    int
	// Inconsistent is set when the bounds do not intersect (a clock that
	// stepped or drifted during the recordings); Estimate is then the
	// median of the handshakes' midpoints.
	Inconsistent bool
}

func estimateOffsets(conns []*Conn) []Offset {
	type bound struct{ lo, hi time.Duration }
	var order [][2]*Recording
	bounds := map[[2]*Recording][]bound{}
	for _, c := range conns {
		cli, srv := c.Ends[0], c.Ends[1]
		if !cli.Client && srv.Client {
			cli, srv = srv, cli
		}
		rtt := cli.First().SRTT
		if !cli.SynSent.IsZero() {
			rtt = cli.Established.Sub(cli.SynSent)
		}
		d := srv.Established.Sub(cli.Established)
		b := bound{d - rtt, d}
		key := [2]*Recording{cli.Rec, srv.Rec}
		if _, ok := bounds[[2]*Recording{srv.Rec, cli.Rec}]; ok {
			key, b = [2]*Recording{srv.Rec, cli.Rec}, bound{-b.hi, -b.lo}
		}
		if _, ok := bounds[key]; !ok {
			order = append(order, key)
		}
		bounds[key] = append(bounds[key], b)
	}
	var out []Offset
	for _, k := range order {
		bs := bounds[k]
		lo, hi := bs[0].lo, bs[0].hi
		for _, b := range bs[1:] {
			lo, hi = max(lo, b.lo), min(hi, b.hi)
		}
		o := Offset{A: k[0], B: k[1], Pairs: len(bs)}
		if lo <= hi {
			o.Estimate, o.Within = (lo+hi)/2, (hi-lo)/2
		} else {
			mids := make([]time.Duration, len(bs))
			for i, b := range bs {
				mids[i] = (b.lo + b.hi) / 2
			}
			slices.SortFunc(mids, cmp.Compare)
			o.Estimate, o.Inconsistent = mids[len(mids)/2], true
		}
		out = append(out, o)
	}
	return out
}

// offset is b's clock minus a's.
func (r *Result) offset(a, b *Recording) time.Duration {
	for _, o := range r.Offsets {
		switch {
		case o.A == a && o.B == b:
			return o.Estimate
		case o.A == b && o.B == a:
			return -o.Estimate
		}
	}
	return 0
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
