package report

import (
	"fmt"
	"slices"

	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/session"
)

// NetnsCounterDiff compares the own counters of two matched namespaces,
// each per 1,000 segments that namespace sent (its TcpOutSegs): the
// counters count every process in the namespace, so their traffic is the
// namespace's too, not the traffic the recording saw.
type NetnsCounterDiff struct {
	Before string `json:"before"`
	After  string `json:"after"`
	Why    string `json:"matched_because"`
	Per    string `json:"per"`
	// BeforeOutSegs and AfterOutSegs are each namespace's TcpOutSegs.
	BeforeOutSegs int64    `json:"before_out_segs"`
	AfterOutSegs  int64    `json:"after_out_segs"`
	Metrics       []Metric `json:"metrics"`
	// Unknown says why they could not be compared.
	Unknown string `json:"unknown,omitempty"`
}

// TcpOutSegs leaves retransmissions out: a black hole can retransmit
// more segments than it sent new ones.
const perOutSegs = "1,000 segments the namespace sent (its own TcpOutSegs, which leaves retransmissions out)"

// compareNetnsCounters compares the retransmit, timeout, reset and drop
// counters of each pair of namespaces that both recordings have counters
// for, with the verdicts of the behaviour table.
func compareNetnsCounters(a, b *Recording, pairs []nsPair) []NetnsCounterDiff {
	var out []NetnsCounterDiff
	pairs = bestPerAfter(pairs)
	if fa, fb := a.Footer, b.Footer; fa != nil && fb != nil && len(fa.NetnsCounters) == 1 && len(fb.NetnsCounters) == 1 &&
		!slices.ContainsFunc(pairs, func(p nsPair) bool { return footerCounters(fa, p.before.Inode) != nil }) {
		// The namespaces the events came from are not known (no
		// sysctls were read for them), but each recording has the
		// counters of one namespace only.
		na, nb := fa.NetnsCounters[0].Netns.Inode, fb.NetnsCounters[0].Netns.Inode
		pairs = []nsPair{{before: Namespace{Name: session.NetnsName(na), Inode: na}, after: Namespace{Name: session.NetnsName(nb), Inode: nb},
			why: "the one namespace each recording has counters of", score: -1}}
	}
	for _, p := range pairs {
		ca, cb := footerCounters(a.Footer, p.before.Inode), footerCounters(b.Footer, p.after.Inode)
		if ca == nil && cb == nil {
			continue
		}
		nd := NetnsCounterDiff{Before: p.before.Name, After: p.after.Name, Why: p.why, Per: perOutSegs, Metrics: []Metric{}}
		out = append(out, nd)
		nd2 := &out[len(out)-1]
		switch {
		case ca == nil || cb == nil:
			nd2.Unknown = "only one recording has this namespace's counters"
			continue
		case ca.From != "start" || cb.From != "start":
			nd2.Unknown = "a namespace's counters were first read at its first event, not at the start"
			continue
		}
		nd2.BeforeOutSegs, nd2.AfterOutSegs = ca.Delta[counterOutSegs], cb.Delta[counterOutSegs]
		var names []string
		for _, m := range []map[string]int64{ca.Delta, cb.Delta} {
			for k := range m {
				if troubleRank(k) <= len(troubleFirst) && !slices.Contains(names, k) {
					names = append(names, k)
				}
			}
		}
		slices.SortFunc(names, func(x, y string) int {
			return compareDeltas(CounterDelta{Name: x}, CounterDelta{Name: y})
		})
		ea, eb := float64(nd2.BeforeOutSegs)/1000, float64(nd2.AfterOutSegs)/1000
		for _, k := range names {
			na, nb := uint64(max(ca.Delta[k], 0)), uint64(max(cb.Delta[k], 0))
			nd2.Metrics = append(nd2.Metrics, counterRate(k, na, nb, ea, eb))
		}
	}
	return out
}

// bestPerAfter keeps, for each namespace of after, only the pair that
// served the most of the same: counters are the namespace's whole, and
// one namespace set beside two would be counted twice.
func bestPerAfter(pairs []nsPair) []nsPair {
	var out []nsPair
	for _, p := range pairs {
		i := slices.IndexFunc(out, func(q nsPair) bool { return q.after.Inode == p.after.Inode })
		switch {
		case i < 0:
			out = append(out, p)
		case p.score > out[i].score:
			out[i] = p
		}
	}
	return out
}

// counterRate is one counter per 1,000 segments sent in both, judged as
// the behaviour table judges its rates.
func counterRate(name string, na, nb uint64, ea, eb float64) Metric {
	m := Metric{Name: name, BeforeN: na, AfterN: nb}
	if ea <= 0 || eb <= 0 {
		m.Verdict, m.Why = VerdictUnknown, "a namespace sent no TCP segment"
		return m
	}
	ra, rb := round3(float64(na)/ea), round3(float64(nb)/eb)
	m.Before, m.After = &ra, &rb
	m.Verdict = rateVerdict(na, nb, ea, eb)
	switch {
	case m.Verdict == VerdictChanged && ra > 0:
		pct := round1((rb - ra) / ra * 100)
		m.ChangePct = &pct
	case m.Verdict == VerdictTooFew:
		m.Why = fmt.Sprintf("%d and %d; need %d on each side", na, nb, MinCount)
	}
	return m
}

// writeNetnsCounterDiff prints the namespace counters compared; the
// counters' names are the recordings' and go through format.Printable.
func writeNetnsCounterDiff(ew *errWriter, nds []NetnsCounterDiff) {
	for _, nd := range nds {
		ew.printf("\nNamespace counters (nstat's), per %s:\n  before %s\n  after  %s\n  matched because %s\n", nd.Per, nd.Before, nd.After, nd.Why)
		if nd.Unknown != "" {
			ew.printf("  not compared: %s\n", nd.Unknown)
			continue
		}
		if len(nd.Metrics) == 0 {
			ew.printf("  no retransmit, timeout, reset or drop counter moved in either (TcpOutSegs %d and %d)\n", nd.BeforeOutSegs, nd.AfterOutSegs)
			continue
		}
		tw := ew.table()
		fmt.Fprintf(tw, "  COUNTER\tBEFORE\tAFTER\tCHANGE\n")
		fmt.Fprintf(tw, "  %s\t%d\t%d\t(the traffic: segments sent)\n", counterOutSegs, nd.BeforeOutSegs, nd.AfterOutSegs)
		for _, m := range nd.Metrics {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", format.Printable(m.Name), rateText(m.Before, m.BeforeN), rateText(m.After, m.AfterN), changeText(m))
		}
		ew.flush(tw)
	}
}
