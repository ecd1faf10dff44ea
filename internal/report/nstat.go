package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
)

// NetnsCounters is one traced network namespace's own counters (nstat's,
// by nstat's names) over the recording, and where they count what
// sendtrace counted, both side by side.
type NetnsCounters struct {
	Netns string `json:"netns"` // net:[INODE]
	Inode uint64 `json:"inode"`
	PID   uint32 `json:"pid,omitempty"` // read through this process; 0: sendtrace's own, or /run/netns
	Comm  string `json:"comm,omitempty"`
	// From is "start", or "first event" when the namespace was found
	// only by its first event (then nothing is compared).
	From        string  `json:"from"`
	DurationSec float64 `json:"duration_s"`
	Note        string  `json:"note,omitempty"`
	// Scope says which of the namespace's processes sendtrace counted.
	Scope string `json:"scope"`
	// Moved is every counter that moved: retransmits, timeouts, resets
	// and drops first.
	Moved    []CounterDelta `json:"moved"`
	Compared []CounterCheck `json:"compared"`
}

// CounterDelta is how much one counter moved.
type CounterDelta struct {
	Name  string `json:"name"`
	Delta int64  `json:"delta"`
}

// CounterCheck sets a namespace counter beside what sendtrace counted of
// the same thing.
type CounterCheck struct {
	What           string `json:"what"`
	Counter        string `json:"counter"`
	CounterValue   int64  `json:"counter_value"`
	Sendtrace      string `json:"sendtrace"`
	SendtraceValue uint64 `json:"sendtrace_value"`
	// Expect is "equal" when sendtrace saw every process of the namespace
	// and counts exactly what the counter counts, "namespace >= traced"
	// otherwise; Why says what the counter counts beyond.
	Expect  string `json:"expect"`
	Verdict string `json:"verdict"` // "agree", "differ", "not compared"
	Why     string `json:"why,omitempty"`
}

// The namespace counters set beside sendtrace's counts, by nstat's names.
const (
	counterRetransSegs      = "TcpRetransSegs"
	counterOutSegs          = "TcpOutSegs"
	counterOutRsts          = "TcpOutRsts"
	counterFastRetrans      = "TcpExtTCPFastRetrans"
	counterSlowStartRetrans = "TcpExtTCPSlowStartRetrans"
	counterTimeouts         = "TcpExtTCPTimeouts"
	counterLossProbes       = "TcpExtTCPLossProbes"
	counterSynRetrans       = "TcpExtTCPSynRetrans"
	counterAbortOnTimeout   = "TcpExtTCPAbortOnTimeout"
)

// Expectations and verdicts of a CounterCheck.
const (
	ExpectEqual   = "equal"
	ExpectAtLeast = "namespace >= traced"

	CounterAgree       = "agree"
	CounterDiffer      = "differ"
	CounterNotCompared = "not compared"
)

// notePIDNetns remembers which namespaces a process's sockets were in,
// to place the kernel's totals, which are kept per process.
func (r *Recording) notePIDNetns(e *events.Event) {
	if e.PID == 0 {
		return
	}
	if r.pidNetns == nil {
		r.pidNetns = map[uint32]map[uint32]bool{}
	}
	m := r.pidNetns[e.PID]
	if m == nil {
		m = map[uint32]bool{}
		r.pidNetns[e.PID] = m
	}
	m[e.Netns] = true
}

// tracedCounts is what sendtrace's exact totals say for one namespace.
type tracedCounts struct {
	retrans        map[string]uint64 // segments by kind, "untraced" included
	retransEvents  uint64
	sentResets     uint64
	timedOut       uint64 // error reports with ETIMEDOUT
	unplacedSegs   uint64 // retransmitted segments of processes in no single namespace
	unplacedResets uint64
}

// countsIn sums the footer's totals of the processes in namespace ino.
// A process seen in no namespace (or in several) cannot be placed,
// unless the recording's events all came from one namespace.
func (r *Recording) countsIn(ino uint64) tracedCounts {
	c := tracedCounts{retrans: map[string]uint64{}}
	if r.Footer == nil {
		return c
	}
	only := len(r.netns) == 1 && r.netns[uint32(ino)] != nil
	for _, row := range r.Footer.Totals {
		here, placed := only, only
		if ns := r.pidNetns[row.PID]; !only && len(ns) == 1 {
			placed, here = true, ns[uint32(ino)]
		}
		switch {
		case !placed && row.Kind == events.KindRetransmit.String():
			c.unplacedSegs += row.Segs
		case !placed && row.Kind == events.KindSendReset.String():
			c.unplacedResets += row.Count
		case !here:
		case row.Kind == events.KindRetransmit.String():
			c.retrans[row.Detail] += row.Segs
			c.retransEvents += row.Count
		case row.Kind == events.KindSendReset.String():
			c.sentResets += row.Count
		case row.Kind == events.KindErrorReport.String() && row.ErrnoName == "ETIMEDOUT":
			c.timedOut += row.Count
		}
	}
	return c
}

// subset says whether the filters left some of a namespace's processes
// or connections untraced, and how.
func subset(f session.Filters) string {
	g := f
	g.Errnos = nil
	if s := g.String(); s != "" {
		return s
	}
	return ""
}

// netnsCounters builds the namespace counters section.
func netnsCounters(r *Recording) []NetnsCounters {
	if r.Footer == nil || len(r.Footer.NetnsCounters) == 0 {
		return nil
	}
	out := []NetnsCounters{}
	for _, n := range r.Footer.NetnsCounters {
		nc := NetnsCounters{
			Netns: session.NetnsName(n.Netns.Inode), Inode: n.Netns.Inode, PID: n.Netns.PID, Comm: n.Comm,
			From: n.From, Note: n.Netns.Note, Moved: sortedDeltas(n.Delta), Compared: []CounterCheck{},
		}
		if !n.Start.IsZero() && n.End.After(n.Start) {
			nc.DurationSec = secs(n.End.Sub(n.Start))
		}
		nc.Scope, nc.Compared = compareCounters(r, n)
		out = append(out, nc)
	}
	return out
}

func compareCounters(r *Recording, n session.NetnsCounters) (string, []CounterCheck) {
	tc := r.countsIn(n.Netns.Inode)
	expect, scope := ExpectEqual, "sendtrace traced every process in it: the recording was not filtered"
	if f := subset(r.Header.Filters); f != "" {
		expect = ExpectAtLeast
		scope = "the recording was filtered (" + f + "): the namespace also counts what was not traced, so namespace >= traced is what holds, not equality"
	}
	var checks []CounterCheck
	if n.Delta == nil {
		return scope, []CounterCheck{}
	}
	d := func(names ...string) int64 {
		var v int64
		for _, name := range names {
			v += n.Delta[name]
		}
		return v
	}
	add := func(what string, counters []string, sendtrace string, st uint64, exact bool, why string) {
		ns := d(counters...)
		if ns == 0 && st == 0 {
			return
		}
		c := CounterCheck{What: what, Counter: strings.Join(counters, " + "), CounterValue: ns,
			Sendtrace: sendtrace, SendtraceValue: st, Expect: ExpectAtLeast, Why: why}
		if exact {
			c.Expect = expect
		}
		switch {
		case n.From != "start":
			c.Verdict, c.Why = CounterNotCompared, "the namespace's counters were first read at its first event, after part of what sendtrace counted"
		case c.Expect == ExpectEqual && ns == int64(st), c.Expect == ExpectAtLeast && ns >= int64(st):
			c.Verdict = CounterAgree
		default:
			c.Verdict = CounterDiffer
		}
		checks = append(checks, c)
	}
	var all uint64
	for _, v := range tc.retrans {
		all += v
	}
	segsKnown := all > 0 || tc.retransEvents == 0
	retransNote, retransWhy := "segments, every kind", ""
	if u := tc.retrans[events.RetransUntraced.String()]; u > 0 {
		retransNote += fmt.Sprintf(" (%d untraced)", u)
		retransWhy = "untraced segments are ones the kernel counted for a traced socket without firing the tracepoint"
	}
	if !segsKnown {
		// Totals written before segments were counted carry no segs.
		checks = append(checks, CounterCheck{What: "retransmitted segments", Counter: counterRetransSegs, CounterValue: d(counterRetransSegs),
			Sendtrace: "retransmit events", SendtraceValue: tc.retransEvents, Expect: expect, Verdict: CounterNotCompared,
			Why: "this recording's totals count retransmit events, not segments"})
	} else {
		add("retransmitted segments", []string{counterRetransSegs}, retransNote, all, true, retransWhy)
		k := func(kinds ...events.RetransKind) uint64 {
			var v uint64
			for _, x := range kinds {
				v += tc.retrans[x.String()]
			}
			return v
		}
		add("fast retransmits", []string{counterFastRetrans}, "segments of kind fast", k(events.RetransFast), false,
			"a segment the kernel counted without firing the tracepoint is untraced, of no kind")
		add("timer and loss recovery", []string{counterTimeouts, counterSlowStartRetrans}, "segments of kinds rto, syn and synack",
			k(events.RetransRTO, events.RetransSYN, events.RetransSYNACK), false,
			"the timer also expires without resending: the last time, before the connection gives up")
		add("tail loss probes", []string{counterLossProbes}, "segments of kind tlp", k(events.RetransTLP), false,
			"a probe that sends new data counts here and retransmits nothing")
		add("SYN and SYN-ACK retransmits", []string{counterSynRetrans}, "segments of kinds syn and synack",
			k(events.RetransSYN, events.RetransSYNACK), true, "")
	}
	add("resets sent", []string{counterOutRsts}, "send_reset events", tc.sentResets, false,
		"the namespace also counts resets answering segments for no socket, which have no owner to trace")
	add("connections timed out", []string{counterAbortOnTimeout}, "error reports ETIMEDOUT", tc.timedOut, false,
		"a connection that timed out after an ICMP error reports that error (EHOSTUNREACH) instead")
	if tc.unplacedSegs+tc.unplacedResets > 0 {
		scope += fmt.Sprintf("; %d retransmitted segments and %d resets of processes seen in no single namespace are not counted here", tc.unplacedSegs, tc.unplacedResets)
	}
	return scope, checks
}

// troubleFirst are the counters a person looks at first, in this order;
// after them, the other retransmit, timeout, reset and drop counters,
// then everything else, by name.
var troubleFirst = []string{
	counterRetransSegs, counterTimeouts, counterLossProbes, counterFastRetrans,
	counterSlowStartRetrans, counterSynRetrans, counterOutRsts, "TcpEstabResets",
	counterAbortOnTimeout, "TcpExtTCPAbortOnData", "TcpExtTCPAbortOnClose", "TcpExtTCPAbortOnMemory",
	"TcpExtTCPAbortOnLinger", "TcpExtTCPAbortFailed", "TcpAttemptFails", "TcpInErrs", "IpOutDiscards", "IpOutNoRoutes",
}

var troubleWords = []string{"Retrans", "Timeout", "Rst", "Reset", "Drop", "Abort", "Fail", "Err", "Loss", "Lost",
	"Discard", "NoRoute", "Prune", "Overflow", "Reneg", "Spurious"}

func troubleRank(name string) int {
	if i := slices.Index(troubleFirst, name); i >= 0 {
		return i
	}
	for _, w := range troubleWords {
		if strings.Contains(name, w) {
			return len(troubleFirst)
		}
	}
	return len(troubleFirst) + 1
}

func sortedDeltas(m map[string]int64) []CounterDelta {
	out := make([]CounterDelta, 0, len(m))
	for k, v := range m {
		out = append(out, CounterDelta{k, v})
	}
	slices.SortFunc(out, compareDeltas)
	return out
}

func compareDeltas(a, b CounterDelta) int {
	return cmp.Or(cmp.Compare(troubleRank(a.Name), troubleRank(b.Name)), strings.Compare(a.Name, b.Name))
}

// writeNetnsCounters prints each namespace's counters beside sendtrace's.
func writeNetnsCounters(ew *errWriter, nss []NetnsCounters) {
	for _, n := range nss {
		who := "sendtrace's own, or through its name"
		if n.PID != 0 {
			who = "through " + format.Process(n.Comm, n.PID, true)
		}
		when := "from the start to the end"
		if n.From != "start" {
			when = "from its first event to the end"
		}
		ew.printf("\nNamespace counters of %s (%s, %s, %s)\n", n.Netns, who, when, format.Duration(durationOf(n.DurationSec)))
		if n.Note != "" {
			ew.printf("  note: %s\n", format.Printable(n.Note))
		}
		if len(n.Moved) == 0 {
			if n.Note == "" {
				ew.printf("  no counter moved\n")
			}
			continue
		}
		if len(n.Compared) > 0 {
			ew.printf("  beside sendtrace's exact totals: %s\n", format.Printable(n.Scope))
			tw := ew.table()
			fmt.Fprintf(tw, "  WHAT\tNAMESPACE COUNTER\tNAMESPACE\tSENDTRACE\tSENDTRACE COUNTS\tEXPECTED\tVERDICT\n")
			for _, c := range n.Compared {
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\t%s\n", c.What, format.Printable(c.Counter), c.CounterValue, c.SendtraceValue, c.Sendtrace, c.Expect, verdictText(c))
			}
			ew.flush(tw)
			for _, c := range n.Compared {
				if c.Why != "" && c.Verdict != CounterNotCompared {
					ew.printf("  %s: %s\n", format.Printable(c.Counter), c.Why)
				}
			}
		}
		ew.printf("  counters that moved (nstat's names; retransmits, timeouts, resets and drops first):\n")
		tw := ew.table()
		for _, m := range n.Moved {
			fmt.Fprintf(tw, "  %s\t%d\n", format.Printable(m.Name), m.Delta)
		}
		ew.flush(tw)
	}
}

func durationOf(sec float64) time.Duration { return time.Duration(sec * 1e9) }

func verdictText(c CounterCheck) string {
	switch c.Verdict {
	case CounterDiffer:
		return "DIFFER by " + strconv.FormatInt(c.CounterValue-int64(c.SendtraceValue), 10)
	case CounterNotCompared:
		return "not compared: " + c.Why
	}
	return c.Verdict
}

// footerCounters is the footer's counters of namespace ino, nil when the
// recording has none.
func footerCounters(f *record.Footer, ino uint64) *session.NetnsCounters {
	if f == nil {
		return nil
	}
	for i := range f.NetnsCounters {
		if f.NetnsCounters[i].Netns.Inode == ino {
			return &f.NetnsCounters[i]
		}
	}
	return nil
}
