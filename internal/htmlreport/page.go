// Package htmlreport writes a recording, or the comparison of two, as one
// self-contained HTML page for a post-mortem: the session's context, the
// diagnoses, failures over time, the top destinations and processes, and
// each failed connection drawn on a time axis. Charts are inline SVG made
// here, so the page needs no script, style, font or image from anywhere
// else and opens from a file:// URL on a machine with no network. Every
// name from the traced machine goes through html/template's escaping.
package htmlreport

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/report"
)

// Options shape a report page.
type Options struct {
	// Conns is how many failed connections are drawn; the others are
	// listed. 0 means DefaultConns.
	Conns int
	// Open is how many of the drawn ones start expanded.
	Open int
	// Top is the rows of the destination and process charts.
	Top int
	// Bucket is the width of the failures-over-time bars; 0 chooses one.
	Bucket time.Duration
}

// Limits that keep the page quick to open however large the recording.
const (
	DefaultConns  = 40
	defaultOpen   = 4
	fullDiagnoses = 3   // per rule, shown in full
	maxDiagnoses  = 200 // per rule, one line each
	maxListed     = 1000
)

// reportPage is what the template renders for one recording.
type reportPage struct {
	Title     string
	Generated string
	Head      headView
	Problems  []string
	Groups    []diagGroup
	Failures  *timeChart
	Dests     []barRow
	Procs     []barRow
	TTF       *report.Percentiles
	Conns     []connView
	Listed    []connRow
	ListMore  int
	Failed    int
	// Counters are the traced namespaces' own counters beside
	// sendtrace's totals.
	Counters []report.NetnsCounters
}

type headView struct {
	File, Host, Kernel, Version string
	Start, End, Duration        string
	Filters                     string
	Hooks                       []hookView
	Sysctls                     []kv
	SysctlsMissing              []string
	Netns                       string
	Complete                    bool
	Events                      uint64
	CountsFrom                  string
	Lost                        string
}

type hookView struct{ Layer, Hook, Status, Why string }

type kv struct{ K, V string }

// diagGroup is one rule's diagnoses: the first few in full, the rest as
// one line each, up to a bound.
type diagGroup struct {
	Anchor     string
	Rule, Name string
	N          int
	Shown      []diagView
	Brief      []diagView
	More       int
}

type diagView struct {
	Rule, Name     string
	Confidence     string
	ConfidenceWhy  string
	Who, Dst       string
	Errno          string
	Evidence, Next string
	Time           string
	Anchor         string // "" when the connection is not on the page
	Cookie         uint64
}

type barRow struct {
	Label   string
	Detail  string
	Value   uint64
	Percent px
	Errnos  string
}

type connView struct {
	Anchor    string
	Cookie    uint64
	Proc      string
	PID       uint32
	Src, Dst  string
	Proto     string
	Errno     string
	Start     string
	TTF       string
	Rule      string
	Diagnoses []diagView
	Open      bool
	Chart     *timelineSVG
	Events    []eventRow
	Omitted   int
}

type eventRow struct {
	Rel, Kind, Errno, Text string
	Class                  string
}

type connRow struct {
	Anchor, Proc, Dst, Errno, Rule, Start, TTF string
	Cookie                                     uint64
}

// WriteReport writes the page of one recording, loaded with col among
// its sinks.
func WriteReport(w io.Writer, rec *report.Recording, col *Collector, o Options) error {
	return pageTemplate.ExecuteTemplate(w, "report", buildReport(rec, col, o))
}

func buildReport(rec *report.Recording, col *Collector, o Options) *reportPage {
	if o.Conns <= 0 {
		o.Conns = DefaultConns
	}
	if o.Open <= 0 {
		o.Open = defaultOpen
	}
	rep := report.Build(rec, report.BuildOptions{Top: o.Top, Bucket: o.Bucket})
	p := &reportPage{
		Title:     "sendtrace report: " + rec.Header.Hostname,
		Generated: time.Now().UTC().Format(time.RFC3339),
		Head:      head(rec),
		Problems:  rep.Problems,
		TTF:       rep.TTF,
		Counters:  rep.NetnsCounters,
	}

	byCookie := map[uint64][]*diagnose.Diagnosis{}
	for i := range rec.Diagnoses {
		d := &rec.Diagnoses[i]
		if d.Cookie != 0 {
			byCookie[d.Cookie] = append(byCookie[d.Cookie], d)
		}
	}
	conns := failedConns(rec, col, byCookie)
	p.Failed = len(conns)
	onPage := map[uint64]string{}
	for i, c := range conns {
		a := "conn-" + strconv.FormatUint(c.Cookie, 10)
		if i < o.Conns+maxListed {
			onPage[c.Cookie] = a
		}
	}

	p.Groups = groups(rec, onPage, "")

	p.Failures = failuresChart(rec, col, rep.Buckets)
	p.Dests = destBars(rep.Destinations)
	p.Procs = procBars(rep.Processes)

	for i, c := range conns {
		if i >= o.Conns {
			if len(p.Listed) == maxListed {
				p.ListMore = len(conns) - i
				break
			}
			p.Listed = append(p.Listed, connRow{Anchor: onPage[c.Cookie], Cookie: c.Cookie, Proc: format.Process(c.Proc.Comm, c.Proc.PID, c.Proc.PID != 0),
				Dst: c.Dst, Errno: events.ErrnoName(c.Errno), Rule: ruleOf(byCookie[c.Cookie]), Start: startOf(rec, c), TTF: ttfOf(c)})
			continue
		}
		p.Conns = append(p.Conns, connOf(rec, col, c, byCookie[c.Cookie], i < o.Open))
	}
	return p
}

func head(rec *report.Recording) headView {
	h := rec.Header
	v := headView{
		File: rec.Path, Host: h.Hostname, Kernel: h.KernelRelease, Version: h.SendtraceVersion,
		Start:    h.StartTime.UTC().Format("2006-01-02 15:04:05 MST"),
		Duration: format.Duration(rec.Duration()),
		Filters:  h.Filters.String(),
		Complete: rec.Footer != nil,
		Events:   rec.Events,
	}
	if v.Filters == "" {
		v.Filters = "none: every process and destination"
	}
	if rec.Footer != nil {
		v.End = rec.Footer.EndTime.UTC().Format("2006-01-02 15:04:05 MST")
		v.CountsFrom = "the kernel's exact totals (footer)"
		l := rec.Footer.Lost
		v.Lost = fmt.Sprintf("%d (kernel %d, userspace %d)", l.Kernel+l.User, l.Kernel, l.User)
	} else {
		v.End = rec.Wall(rec.EndMono).UTC().Format("2006-01-02 15:04:05 MST") + " (last event)"
		v.CountsFrom = "the events in the file (no footer)"
		v.Lost = "unknown: no footer"
	}
	for _, hk := range h.Hooks {
		v.Hooks = append(v.Hooks, hookView{Layer: hk.Layer, Hook: hk.Shown(), Status: string(hk.Status()), Why: hk.Why})
	}
	for k, val := range h.Sysctls {
		v.Sysctls = append(v.Sysctls, kv{k, val})
	}
	slices.SortFunc(v.Sysctls, func(a, b kv) int { return cmp.Compare(a.K, b.K) })
	v.SysctlsMissing = h.SysctlsMissing
	if h.Netns.PID != 0 {
		v.Netns = "read in the network namespace of pid " + strconv.FormatUint(uint64(h.Netns.PID), 10)
	}
	if h.Netns.Note != "" {
		v.Netns += " " + h.Netns.Note
	}
	return v
}

// failedConns are the sockets that failed, in the order the page shows
// them: by diagnosis (in the order of diagnose.Rules, undiagnosed last),
// then by time.
func failedConns(rec *report.Recording, col *Collector, byCookie map[uint64][]*diagnose.Diagnosis) []*report.Conn {
	var out []*report.Conn
	for cookie, ce := range col.conns {
		c := rec.Conns[cookie]
		if !ce.failed || c == nil {
			continue
		}
		out = append(out, c)
	}
	rank := func(c *report.Conn) int {
		ds := byCookie[c.Cookie]
		if len(ds) == 0 {
			return len(diagnose.Rules)
		}
		return slices.Index(diagnose.Rules, ds[0].Rule)
	}
	slices.SortFunc(out, func(a, b *report.Conn) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.First, b.First), cmp.Compare(a.Cookie, b.Cookie))
	})
	return out
}

// groups are a recording's diagnoses by rule; each rule's heading is
// anchored at prefix + "rule-" + its name.
func groups(rec *report.Recording, onPage map[uint64]string, prefix string) []diagGroup {
	var out []diagGroup
	for _, r := range diagnose.Rules {
		g := diagGroup{Rule: r, Anchor: prefix + "rule-" + r}
		for i := range rec.Diagnoses {
			d := &rec.Diagnoses[i]
			if d.Rule != r {
				continue
			}
			g.N++
			g.Name = d.Name
			switch {
			case len(g.Shown) < fullDiagnoses:
				g.Shown = append(g.Shown, diagOf(rec.StartMono, d, onPage[d.Cookie]))
			case len(g.Brief) < maxDiagnoses:
				g.Brief = append(g.Brief, diagOf(rec.StartMono, d, onPage[d.Cookie]))
			default:
				g.More++
			}
		}
		if g.N > 0 {
			out = append(out, g)
		}
	}
	return out
}

// diagOf shows a diagnosis, its time counted from origin, a
// CLOCK_MONOTONIC time of its recording.
func diagOf(origin uint64, d *diagnose.Diagnosis, anchor string) diagView {
	v := diagView{
		Rule: d.Rule, Name: d.Name, Confidence: d.Confidence, ConfidenceWhy: d.ConfidenceWhy,
		Who: format.Process(d.Comm, d.PID, d.OwnerKnown), Errno: events.ErrnoString(d.Errno),
		Evidence: d.Evidence.Text, Next: d.NextStep, Anchor: anchor, Cookie: d.Cookie,
		Time: signedDuration(time.Duration(int64(d.Mono - origin))),
	}
	if d.Dst.IsValid() {
		v.Dst = d.Dst.String()
	}
	return v
}

func ruleOf(ds []*diagnose.Diagnosis) string {
	if len(ds) == 0 {
		return ""
	}
	return ds[0].Rule
}

func startOf(rec *report.Recording, c *report.Conn) string {
	if c.First <= rec.StartMono {
		return "+0s"
	}
	return signedDuration(time.Duration(c.First - rec.StartMono))
}

func ttfOf(c *report.Conn) string {
	if c.TTF < 0 {
		return ""
	}
	return format.Duration(c.TTF)
}

func connOf(rec *report.Recording, col *Collector, c *report.Conn, ds []*diagnose.Diagnosis, open bool) connView {
	ce := col.conns[c.Cookie]
	v := connView{
		Anchor: "conn-" + strconv.FormatUint(c.Cookie, 10), Cookie: c.Cookie,
		Proc: format.Process(c.Proc.Comm, c.Proc.PID, c.Proc.PID != 0), PID: c.Proc.PID,
		Dst: c.Dst, Errno: events.ErrnoString(c.Errno), Start: startOf(rec, c), TTF: ttfOf(c),
		Rule: ruleOf(ds), Open: open, Omitted: ce.omitted,
	}
	for _, d := range ds {
		v.Diagnoses = append(v.Diagnoses, diagOf(rec.StartMono, d, ""))
	}
	evs := ce.events
	if len(evs) > 0 {
		v.Proto = events.ProtoName(evs[0].Protocol)
		for i := range evs {
			if evs[i].Src.Port() != 0 {
				v.Src = evs[i].Src.String()
				break
			}
		}
	}
	v.Chart = drawTimeline(c.Cookie, evs)
	if len(evs) > 0 {
		v.Events = eventRows(evs, evs[0].Mono)
	}
	return v
}

// eventRows lists events with their time from origin, a CLOCK_MONOTONIC
// time of their recording.
func eventRows(evs []events.Event, origin uint64) []eventRow {
	out := make([]eventRow, 0, len(evs))
	for i := range evs {
		e := &evs[i]
		out = append(out, eventRow{
			Rel:  signedDuration(time.Duration(int64(e.Mono - origin))),
			Kind: e.Kind.String(), Errno: events.ErrnoName(e.Errno),
			Text:  string(format.AppendEvent(nil, e)),
			Class: markClass(e),
		})
	}
	return out
}

func destBars(rows []report.DestRow) []barRow {
	var out []barRow
	var top uint64
	for _, d := range rows {
		top = max(top, d.SendErrors+d.ErrorReports)
	}
	for _, d := range rows {
		n := d.SendErrors + d.ErrorReports
		out = append(out, barRow{Label: orUnknown(d.Dst), Value: n, Percent: pct(n, top), Errnos: report.ErrnoList(d.Errnos),
			Detail: fmt.Sprintf("%d send errors, %d error reports, %d retransmitted segments (%s), %d resets", d.SendErrors, d.ErrorReports, d.RetransSegs, report.KindList(d.RetransKinds), d.Resets)})
	}
	return out
}

func procBars(rows []report.ProcRow) []barRow {
	var out []barRow
	var top uint64
	for _, p := range rows {
		top = max(top, p.SendErrors+p.ErrorReports)
	}
	for _, p := range rows {
		n := p.SendErrors + p.ErrorReports
		out = append(out, barRow{Label: format.Process(p.Comm, p.PID, p.PID != 0), Value: n, Percent: pct(n, top), Errnos: report.ErrnoList(p.Errnos),
			Detail: fmt.Sprintf("%d send errors, %d error reports, %d retransmitted segments (%s), %d connections", p.SendErrors, p.ErrorReports, p.RetransSegs, report.KindList(p.RetransKinds), p.Connections)})
	}
	return out
}

func pct(n, top uint64) px {
	if top == 0 {
		return 0
	}
	return px(float64(n) * 100 / float64(top))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
