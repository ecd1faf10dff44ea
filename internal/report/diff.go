package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

// Diff compares two recordings: what was configured differently, then how
// differently the kernel behaved, normalised by traffic so that a busier
// second recording does not look worse just for being busier.
type Diff struct {
	Before Side `json:"before"`
	After  Side `json:"after"`
	// Sysctls lists only the sysctls that differ, in the first pair of
	// Namespaces.
	Sysctls         []SysctlDiff `json:"sysctls"`
	SysctlsCompared int          `json:"sysctls_compared"`
	// Namespaces pairs the network namespaces the recordings' events
	// came from, and compares the sysctls of each pair.
	Namespaces   []NetnsDiff `json:"netns"`
	Metrics      []Metric    `json:"metrics"`
	TTF          TTFDiff     `json:"time_to_failure"`
	Destinations []DestDiff  `json:"destinations"`
	Thresholds   Thresholds  `json:"thresholds"`
	Notes        []string    `json:"notes,omitempty"`
	// NetnsCounters compares the matched namespaces' own counters.
	NetnsCounters []NetnsCounterDiff `json:"netns_counters,omitempty"`
}

// Side describes one recording.
type Side struct {
	File          string  `json:"file"`
	Hostname      string  `json:"hostname"`
	KernelRelease string  `json:"kernel_release"`
	Start         string  `json:"start_time"`
	DurationSec   float64 `json:"duration_s"`
	Complete      bool    `json:"complete"`
	CountsFrom    string  `json:"counts_from"`
	Sends         *uint64 `json:"sends"`
	Bytes         *uint64 `json:"bytes"`
}

// NetnsDiff compares the sysctls of two namespaces matched between the
// recordings.
type NetnsDiff struct {
	Before   string       `json:"before"`
	After    string       `json:"after"`
	Why      string       `json:"matched_because"`
	Sysctls  []SysctlDiff `json:"sysctls"`
	Compared int          `json:"sysctls_compared"`
	// Unknown says why the values could not be compared.
	Unknown string `json:"unknown,omitempty"`
}

// SysctlDiff is one sysctl that differs. A value absent on one side is "".
type SysctlDiff struct {
	Name   string `json:"name"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// Metric is one normalised rate in both recordings.
type Metric struct {
	Name   string   `json:"name"`
	Before *float64 `json:"before"`
	After  *float64 `json:"after"`
	// BeforeN and AfterN are the event counts the rates come from.
	BeforeN uint64 `json:"before_n"`
	AfterN  uint64 `json:"after_n"`
	// ChangePct is set only when Verdict is "changed" and both rates are
	// non-zero.
	ChangePct *float64 `json:"change_pct,omitempty"`
	Verdict   string   `json:"verdict"`
	Why       string   `json:"why,omitempty"`
}

// TTFDiff compares times to failure.
type TTFDiff struct {
	Before  *Percentiles `json:"before"`
	After   *Percentiles `json:"after"`
	Verdict string       `json:"verdict"`
	// ChangeP50Pct is the change of the median when Verdict is "changed".
	ChangeP50Pct *float64 `json:"change_p50_pct,omitempty"`
}

// DestDiff compares one destination present in both recordings.
type DestDiff struct {
	Dst    string       `json:"dst"`
	Before DestMeasures `json:"before"`
	After  DestMeasures `json:"after"`
	TTF    string       `json:"ttf_verdict"`
}

// DestMeasures are one destination's numbers in one recording.
type DestMeasures struct {
	SendErrors    uint64       `json:"send_errors"`
	RetransSegs   uint64       `json:"retrans_segs"`
	ErrorReports  uint64       `json:"error_reports"`
	Sends         *uint64      `json:"sends"`
	FailedPer1000 *float64     `json:"failed_per_1000_sends"`
	RetransPerMB  *float64     `json:"retrans_segs_per_mb"`
	TTF           *Percentiles `json:"time_to_failure,omitempty"`
}

// Thresholds are the documented limits below which changes are not
// called real (see MinCount and MinTTFSamples).
type Thresholds struct {
	MinCount      int `json:"min_count"`
	MinTTFSamples int `json:"min_ttf_samples"`
}

// Compare computes the diff of two loaded recordings.
func Compare(a, b *Recording) *Diff {
	d := &Diff{
		Before:       side(a),
		After:        side(b),
		Sysctls:      []SysctlDiff{},
		Metrics:      []Metric{},
		Namespaces:   []NetnsDiff{},
		Destinations: []DestDiff{},
		Thresholds:   Thresholds{MinCount: MinCount, MinTTFSamples: MinTTFSamples},
	}
	pairs, notes := matchNamespaces(a, b)
	d.Notes = append(d.Notes, notes...)
	d.NetnsCounters = compareNetnsCounters(a, b, pairs)
	for i, p := range pairs {
		nd := NetnsDiff{Before: namespaceText(p.before), After: namespaceText(p.after), Why: p.why}
		nd.Sysctls, nd.Compared = sysctlDiff(p.before.Sysctls, p.after.Sysctls)
		for _, n := range []Namespace{p.before, p.after} {
			if len(n.Sysctls) == 0 {
				nd.Unknown = n.Name + ": " + orDash(n.Note)
			}
		}
		d.Namespaces = append(d.Namespaces, nd)
		if i == 0 {
			d.Sysctls, d.SysctlsCompared = nd.Sysctls, nd.Compared
		}
	}
	if a.Header.KernelRelease != b.Header.KernelRelease {
		d.Notes = append(d.Notes, fmt.Sprintf("the kernels differ (%s, %s): behaviour may differ for that reason alone", a.Header.KernelRelease, b.Header.KernelRelease))
	}
	for _, r := range []*Recording{a, b} {
		if r.Footer == nil {
			d.Notes = append(d.Notes, fmt.Sprintf("%s has no footer: its counts are from the events in the file, not the kernel's exact totals", r.Path))
		}
		if r.CutAt > 0 {
			d.Notes = append(d.Notes, r.Path+": "+streamCut(r))
		}
	}

	sa, ba, oka := a.Traffic()
	sb, bb, okb := b.Traffic()
	traffic := oka && okb
	noTraffic := "sends were not counted in " + missingTraffic(a, oka, b, okb)
	rate := func(name string, na, nb uint64, ea, eb float64, known bool, why string) {
		m := Metric{Name: name, BeforeN: na, AfterN: nb}
		if !known || ea <= 0 || eb <= 0 {
			m.Verdict = VerdictUnknown
			m.Why = why
			if known {
				m.Why = "no traffic in one recording"
			}
			d.Metrics = append(d.Metrics, m)
			return
		}
		ra, rb := float64(na)/ea, float64(nb)/eb
		m.Before, m.After = &ra, &rb
		m.Verdict = rateVerdict(na, nb, ea, eb)
		if m.Verdict == VerdictChanged && ra > 0 {
			pct := round1((rb - ra) / ra * 100)
			m.ChangePct = &pct
		}
		if m.Verdict == VerdictTooFew {
			m.Why = fmt.Sprintf("%d and %d events; need %d on each side", na, nb, MinCount)
		}
		d.Metrics = append(d.Metrics, m)
	}
	// Rates are per unit of traffic, never per unit of time: two
	// recordings of one fault that ran for different lengths would
	// otherwise differ by their lengths alone.
	connA, connB := float64(len(a.Conns)), float64(len(b.Conns))
	failA, failB := a.Count(events.KindSendError), b.Count(events.KindSendError)
	// Retransmits in segments, the kernel's unit: under GSO one event
	// carries up to 45 of them.
	retA, retB := a.RetransSegs(), b.RetransSegs()

	rate("failed sends per 1,000 sends", failA, failB, float64(sa)/1000, float64(sb)/1000, traffic, noTraffic)
	rate("retransmitted segments per MB sent", retA, retB, float64(ba)/1e6, float64(bb)/1e6, traffic, noTraffic)
	rate("failed sends per connection", failA, failB, connA, connB, true, "")
	rate("retransmitted segments per connection", retA, retB, connA, connB, true, "")
	for _, k := range []events.Kind{events.KindSendError, events.KindErrorReport} {
		for _, n := range union(a.Errnos(k), b.Errnos(k)) {
			na, nb := a.CountErrno(k, n), b.CountErrno(k, n)
			if traffic {
				rate(fmt.Sprintf("%s %s per 1,000 sends", k, events.ErrnoName(n)), na, nb, float64(sa)/1000, float64(sb)/1000, true, "")
			} else {
				rate(fmt.Sprintf("%s %s per connection", k, events.ErrnoName(n)), na, nb, connA, connB, true, "")
			}
		}
	}

	d.TTF.Before, d.TTF.After = percentiles(a.TTF()), percentiles(b.TTF())
	d.TTF.Verdict = ttfVerdict(d.TTF.Before, d.TTF.After)
	if d.TTF.Before == nil && d.TTF.After == nil {
		d.TTF.Verdict = VerdictUnknown
	}
	if d.TTF.Verdict == VerdictChanged && d.TTF.Before.P50 > 0 {
		pct := round1(float64(d.TTF.After.P50-d.TTF.Before.P50) / float64(d.TTF.Before.P50) * 100)
		d.TTF.ChangeP50Pct = &pct
	}

	var keys []string
	for k := range a.Dests {
		if _, ok := b.Dests[k]; ok && k != "" {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, dstLess)
	for _, k := range keys {
		da, db := a.Dests[k], b.Dests[k]
		dd := DestDiff{Dst: k, Before: measures(da), After: measures(db)}
		dd.TTF = ttfVerdict(dd.Before.TTF, dd.After.TTF)
		if dd.Before.TTF == nil && dd.After.TTF == nil {
			dd.TTF = VerdictUnknown
		}
		d.Destinations = append(d.Destinations, dd)
	}
	return d
}

func missingTraffic(a *Recording, oka bool, b *Recording, okb bool) string {
	switch {
	case !oka && !okb:
		return "either recording"
	case !oka:
		return a.Path
	}
	return b.Path
}

func side(r *Recording) Side {
	s := Side{
		File: r.Path, Hostname: r.Header.Hostname, KernelRelease: r.Header.KernelRelease,
		Start: r.Header.StartTime.Format(time.RFC3339Nano), DurationSec: secs(r.Duration()),
		Complete: r.Footer != nil, CountsFrom: "events",
	}
	if r.Footer != nil {
		s.CountsFrom = "kernel"
	}
	if sends, bytes, ok := r.Traffic(); ok {
		s.Sends, s.Bytes = &sends, &bytes
	}
	return s
}

func measures(d *Dest) DestMeasures {
	sends, bytes := d.Sends(), d.Bytes()
	m := DestMeasures{SendErrors: d.SendErrors, RetransSegs: d.Retrans.Total(), ErrorReports: d.ErrorReports, Sends: sends, TTF: percentiles(d.TTF)}
	if sends != nil && *sends > 0 {
		v := round3(float64(d.SendErrors) / float64(*sends) * 1000)
		m.FailedPer1000 = &v
	}
	if bytes != nil && *bytes > 0 {
		// Segments from the kernel: its totals per destination, else
		// the per-socket counters that came with the byte count; the
		// events may have lost some retransmits.
		n := d.Retrans.Total()
		if !d.RetransExact {
			n = max(n, d.RetransSegs())
		}
		v := round3(float64(n) / (float64(*bytes) / 1e6))
		m.RetransPerMB = &v
	}
	return m
}

func sysctlDiff(a, b map[string]string) ([]SysctlDiff, int) {
	names := map[string]bool{}
	for k := range a {
		names[k] = true
	}
	for k := range b {
		names[k] = true
	}
	sorted := make([]string, 0, len(names))
	for k := range names {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	out := []SysctlDiff{}
	for _, k := range sorted {
		va, oka := a[k]
		vb, okb := b[k]
		if oka && okb && va == vb {
			continue
		}
		out = append(out, SysctlDiff{Name: k, Before: va, After: vb})
	}
	return out, len(sorted)
}

func union(a, b []int32) []int32 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// WriteDiffText writes the diff side by side. Every string from the
// recordings, and their paths, goes through format.Printable.
func WriteDiffText(w io.Writer, d *Diff) error {
	ew := &errWriter{w: w}
	p := format.Printable
	tw := ew.table()
	fmt.Fprintf(tw, "\tBEFORE\tAFTER\n")
	fmt.Fprintf(tw, "file\t%s\t%s\n", p(d.Before.File), p(d.After.File))
	fmt.Fprintf(tw, "host\t%s\t%s\n", p(orDash(d.Before.Hostname)), p(orDash(d.After.Hostname)))
	fmt.Fprintf(tw, "kernel\t%s\t%s\n", p(orDash(d.Before.KernelRelease)), p(orDash(d.After.KernelRelease)))
	fmt.Fprintf(tw, "started\t%s\t%s\n", p(shortTime(d.Before.Start)), p(shortTime(d.After.Start)))
	fmt.Fprintf(tw, "ran\t%s\t%s\n", format.Duration(time.Duration(d.Before.DurationSec*1e9)), format.Duration(time.Duration(d.After.DurationSec*1e9)))
	fmt.Fprintf(tw, "counts\t%s\t%s\n", countsText(d.Before), countsText(d.After))
	fmt.Fprintf(tw, "sends\t%s\t%s\n", optU(d.Before.Sends), optU(d.After.Sends))
	ew.flush(tw)
	for _, n := range d.Notes {
		ew.printf("note: %s\n", p(n))
	}

	for _, nd := range d.Namespaces {
		// Before and After are namespaceText's, escaped already.
		ew.printf("\nNetwork namespaces compared (%s):\n  before %s\n  after  %s\n", nd.Why, nd.Before, nd.After)
		switch {
		case nd.Unknown != "":
			ew.printf("Sysctls: unknown, not recorded in %s\n", p(nd.Unknown))
		case len(nd.Sysctls) == 0:
			ew.printf("Sysctls: all %d the same\n", nd.Compared)
		default:
			ew.printf("Sysctls that differ (%d of %d)\n", len(nd.Sysctls), nd.Compared)
			tw = ew.table()
			fmt.Fprintf(tw, "NAME\tBEFORE\tAFTER\n")
			for _, s := range nd.Sysctls {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p(s.Name), p(absent(s.Before)), p(absent(s.After)))
			}
			ew.flush(tw)
		}
	}

	ew.printf("\nBehaviour\n")
	tw = ew.table()
	fmt.Fprintf(tw, "METRIC\tBEFORE\tAFTER\tCHANGE\n")
	for _, m := range d.Metrics {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p(m.Name), rateText(m.Before, m.BeforeN), rateText(m.After, m.AfterN), changeText(m))
	}
	t := d.TTF
	ttfRow := func(name string, get func(*Percentiles) time.Duration, change string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, pctText(t.Before, get), pctText(t.After, get), change)
	}
	ttfRow("time to failure p50", func(p *Percentiles) time.Duration { return p.P50 }, ttfChange(t))
	ttfRow("time to failure p95", func(p *Percentiles) time.Duration { return p.P95 }, "")
	ttfRow("time to failure max", func(p *Percentiles) time.Duration { return p.Max }, "")
	ew.flush(tw)
	ew.printf("(time to failure: %s, as diagnosed; n = connections)\n", diagnose.TimeToFailureMeaning)

	if len(d.Destinations) > 0 {
		ew.printf("\nPer destination (in both recordings)\n")
		tw = ew.table()
		fmt.Fprintf(tw, "DESTINATION\tSEND ERRORS\tRETRANS SEGS\tERROR REPORTS\tFAILED/1000 SENDS\tTTF p50\tTTF\n")
		for _, dd := range d.Destinations {
			fmt.Fprintf(tw, "%s\t%d -> %d\t%d -> %d\t%d -> %d\t%s -> %s\t%s -> %s\t%s\n", p(dd.Dst),
				dd.Before.SendErrors, dd.After.SendErrors, dd.Before.RetransSegs, dd.After.RetransSegs,
				dd.Before.ErrorReports, dd.After.ErrorReports,
				optF(dd.Before.FailedPer1000), optF(dd.After.FailedPer1000),
				pctText(dd.Before.TTF, func(p *Percentiles) time.Duration { return p.P50 }),
				pctText(dd.After.TTF, func(p *Percentiles) time.Duration { return p.P50 }), dd.TTF)
		}
		ew.flush(tw)
	}
	writeNetnsCounterDiff(ew, d.NetnsCounters)
	ew.printf("\nSends are successful send calls, counted per socket in the kernel while recording; bytes are what those calls handed to the kernel.\n")
	ew.printf("Changes are called real only with at least %d events on each side and a difference beyond two standard errors (Poisson),\n"+
		"or for time to failure, at least %d connections on each side whose ranges do not overlap.\n", MinCount, MinTTFSamples)
	return ew.err
}

func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func countsText(s Side) string {
	if s.Complete {
		return "exact (kernel totals)"
	}
	return "from events (footer missing)"
}

func absent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}

func rateText(v *float64, n uint64) string {
	if v == nil {
		return fmt.Sprintf("? (n=%d)", n)
	}
	return fmt.Sprintf("%s (n=%d)", strconv.FormatFloat(*v, 'g', 4, 64), n)
}

func changeText(m Metric) string {
	switch m.Verdict {
	case VerdictChanged:
		if m.ChangePct != nil {
			return fmt.Sprintf("%+.1f%%", *m.ChangePct)
		}
		if m.BeforeN == 0 {
			return "new"
		}
		return "gone"
	case VerdictUnknown:
		return "unknown: " + format.Printable(m.Why)
	case VerdictTooFew:
		return "too few to tell (" + format.Printable(m.Why) + ")"
	}
	if m.BeforeN == m.AfterN && m.Before != nil && m.After != nil && *m.Before == *m.After {
		return VerdictUnchanged
	}
	return m.Verdict
}

func ttfChange(t TTFDiff) string {
	switch t.Verdict {
	case VerdictChanged:
		if t.ChangeP50Pct != nil {
			return fmt.Sprintf("%+.1f%% (p50)", *t.ChangeP50Pct)
		}
		return VerdictChanged
	case VerdictTooFew:
		na, nb := 0, 0
		if t.Before != nil {
			na = t.Before.N
		}
		if t.After != nil {
			nb = t.After.N
		}
		return fmt.Sprintf("too few to tell (%d and %d connections; need %d on each side)", na, nb, MinTTFSamples)
	case VerdictUnknown:
		return "unknown: no connection failed after retransmitting"
	}
	return "within noise (ranges overlap)"
}

func pctText(p *Percentiles, get func(*Percentiles) time.Duration) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%s (n=%d)", format.Duration(get(p)), p.N)
}

func optF(v *float64) string {
	if v == nil {
		return "?"
	}
	return strconv.FormatFloat(*v, 'g', 4, 64)
}
