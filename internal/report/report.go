package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/session"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
)

// Report is the machine-readable form of `sendtrace report`.
type Report struct {
	File             string  `json:"file"`
	Hostname         string  `json:"hostname"`
	KernelRelease    string  `json:"kernel_release"`
	SendtraceVersion string  `json:"sendtrace_version"`
	Start            string  `json:"start_time"`
	DurationSec      float64 `json:"duration_s"`
	// Complete is false when the footer is missing; Problems then says
	// what that means for the numbers.
	Complete  bool     `json:"complete"`
	Truncated bool     `json:"truncated"`
	Problems  []string `json:"problems,omitempty"`
	Events    uint64   `json:"events"`
	// CountsFrom is "kernel" when the counts below are the kernel's exact
	// totals, "events" when they were counted from the file.
	CountsFrom string                       `json:"counts_from"`
	ByKind     map[string]uint64            `json:"by_kind"`
	ByErrno    map[string]map[string]uint64 `json:"by_errno"`
	Lost       *record.Lost                 `json:"lost,omitempty"`

	Filters session.Filters `json:"filters"`
	Hooks   session.Plan    `json:"hooks"`

	Destinations []DestRow    `json:"destinations"`
	Processes    []ProcRow    `json:"processes"`
	FailedConns  []ConnRow    `json:"failed_connections"`
	TTF          *Percentiles `json:"time_to_failure,omitempty"`
	Buckets      Buckets      `json:"failures_over_time"`
	// Diagnoses name the likely cause of each failure (see
	// docs/json-schema.md, "Diagnosis records").
	Diagnoses []diagnose.Diagnosis `json:"diagnoses"`
	// Namespaces are the recorded sysctls, per network namespace.
	Namespaces []Namespace `json:"netns_sysctls"`
	// NetnsCounters are the traced namespaces' own counters, beside
	// sendtrace's; absent when the recording has none.
	NetnsCounters []NetnsCounters `json:"netns_counters,omitempty"`
}

// DestRow is one destination in the report.
type DestRow struct {
	Dst          string            `json:"dst"`
	SendErrors   uint64            `json:"send_errors"`
	Errnos       map[string]uint64 `json:"send_errnos,omitempty"`
	ErrorReports uint64            `json:"error_reports"`
	// CountsExact: send errors, error reports and resets are the
	// kernel's totals; else they count the events in the file (a
	// recording without a footer, or older than per-destination totals).
	CountsExact bool `json:"counts_exact"`
	// Received is the events of those kinds in the file, when fewer
	// arrived than the kernel counted.
	Received     *DestReceived     `json:"received,omitempty"`
	RetransSegs  uint64            `json:"retrans_segs"`
	RetransKinds map[string]uint64 `json:"retrans_segs_by_kind,omitempty"`
	// RetransExact: the segments are the kernel's totals, untraced
	// included, rather than the events'.
	RetransExact  bool         `json:"retrans_segs_exact"`
	RetransEvents uint64       `json:"retransmit_events"`
	Resets        uint64       `json:"resets"`
	Sends         *uint64      `json:"sends"`
	Bytes         *uint64      `json:"bytes"`
	TTF           *Percentiles `json:"time_to_failure,omitempty"`
}

// DestReceived counts a destination's events in the file.
type DestReceived struct {
	SendErrors   uint64 `json:"send_errors"`
	ErrorReports uint64 `json:"error_reports"`
	Resets       uint64 `json:"resets"`
}

func destReceived(d *events.Dest) *DestReceived {
	if !d.Short() {
		return nil
	}
	r := &d.Received
	return &DestReceived{SendErrors: r.SendErrors, ErrorReports: r.ErrorReports, Resets: r.Resets()}
}

// ProcRow is one socket owner in the report.
type ProcRow struct {
	PID          uint32            `json:"pid"`
	Comm         string            `json:"comm"`
	SendErrors   uint64            `json:"send_errors"`
	Errnos       map[string]uint64 `json:"send_errnos,omitempty"`
	ErrorReports uint64            `json:"error_reports"`
	// CountsExact: send errors and error reports are the kernel's
	// totals; else they count the events in the file.
	CountsExact bool `json:"counts_exact"`
	// Received is those events in the file, when fewer arrived than the
	// kernel counted.
	Received      *ProcFailures     `json:"received,omitempty"`
	RetransSegs   uint64            `json:"retrans_segs"`
	RetransKinds  map[string]uint64 `json:"retrans_segs_by_kind,omitempty"`
	RetransEvents uint64            `json:"retransmit_events"`
	Connections   int               `json:"connections"`
}

// ConnRow is one connection that failed.
type ConnRow struct {
	Cookie uint64 `json:"cookie"`
	Dst    string `json:"dst"`
	PID    uint32 `json:"pid"`
	Comm   string `json:"comm"`
	Errno  string `json:"errno"`
	// RetransSegs are the segments of the socket's retransmit events.
	RetransSegs   uint64            `json:"retrans_segs"`
	RetransKinds  map[string]uint64 `json:"retrans_segs_by_kind,omitempty"`
	RetransEvents uint64            `json:"retransmit_events"`
	SendErrors    uint64            `json:"send_errors"`
	StartSec      float64           `json:"start_s"`
	TTFSec        float64           `json:"time_to_failure_s"` // -1: not a retransmit timeout
}

// Buckets count failures in fixed windows from the start of the recording.
type Buckets struct {
	WidthSec float64  `json:"width_s"`
	Rows     []Bucket `json:"rows"`
}

// Bucket is one window.
type Bucket struct {
	StartSec     float64 `json:"start_s"`
	SendErrors   uint64  `json:"send_errors"`
	ErrorReports uint64  `json:"error_reports"`
	Resets       uint64  `json:"resets"`
	// RetransSegs are the segments the retransmit events in the window
	// carried.
	RetransSegs uint64 `json:"retrans_segs"`
}

// BuildOptions shape a report.
type BuildOptions struct {
	Top    int           // rows per table; 0 means 10
	Bucket time.Duration // bucket width; 0 chooses one
}

// Build computes the report of one recording.
func Build(r *Recording, o BuildOptions) *Report {
	if o.Top <= 0 {
		o.Top = 10
	}
	h := r.Header
	rep := &Report{
		Namespaces:       r.Namespaces(),
		Diagnoses:        r.Diagnoses,
		File:             r.Path,
		Hostname:         h.Hostname,
		KernelRelease:    h.KernelRelease,
		SendtraceVersion: h.SendtraceVersion,
		Start:            h.StartTime.Format(time.RFC3339Nano),
		DurationSec:      secs(r.Duration()),
		Complete:         r.Footer != nil,
		Truncated:        r.Truncated,
		Events:           r.Events,
		ByKind:           map[string]uint64{},
		ByErrno:          map[string]map[string]uint64{},
		Filters:          h.Filters,
		Hooks:            h.Hooks,
		Destinations:     []DestRow{},
		Processes:        []ProcRow{},
		FailedConns:      []ConnRow{},
	}
	rep.Problems = problems(r)
	rep.NetnsCounters = netnsCounters(r)
	if r.Footer != nil && (r.Footer.Window == nil || r.Footer.Window.KernelSegments > 0) {
		rep.CountsFrom = "kernel"
		rep.Lost = &r.Footer.Lost
		for k, v := range r.Footer.ByKind {
			rep.ByKind[k] = v
		}
		for k, m := range r.Footer.ByErrno {
			rep.ByErrno[k] = m
		}
	} else {
		rep.CountsFrom = "events"
		for k, v := range r.Observed {
			rep.ByKind[k.String()] = v
		}
		for k, m := range r.ObservedErrno {
			out := map[string]uint64{}
			for n, v := range m {
				out[events.ErrnoName(n)] = v
			}
			rep.ByErrno[k.String()] = out
		}
	}

	for _, d := range r.Dests {
		if d.Key == "" && d.SendErrors+d.ErrorReports+d.Retrans.Total()+d.Resets() == 0 {
			continue
		}
		rep.Destinations = append(rep.Destinations, DestRow{
			Dst: d.Key, SendErrors: d.SendErrors, Errnos: errnoMap(d.SendErrno),
			ErrorReports: d.ErrorReports, CountsExact: d.Exact, Received: destReceived(d.Dest),
			RetransSegs: d.Retrans.Total(), RetransKinds: kindsMap(&d.Retrans),
			RetransExact: d.RetransExact, RetransEvents: d.Retransmits, Resets: d.Resets(),
			Sends: d.Sends(), Bytes: d.Bytes(), TTF: percentiles(d.TTF),
		})
	}
	slices.SortFunc(rep.Destinations, func(a, b DestRow) int {
		return cmp.Or(
			cmp.Compare(b.SendErrors, a.SendErrors),
			cmp.Compare(b.ErrorReports, a.ErrorReports),
			cmp.Compare(b.RetransSegs+b.Resets, a.RetransSegs+a.Resets),
			dstLess(a.Dst, b.Dst))
	})
	rep.Destinations = rep.Destinations[:min(len(rep.Destinations), o.Top)]

	for p, s := range r.Procs {
		if s.SendErrors+s.ErrorReports+s.Retrans.Total() == 0 {
			continue
		}
		var recv *ProcFailures
		if s.Exact && s.Received != (ProcFailures{SendErrors: s.SendErrors, ErrorReports: s.ErrorReports}) {
			recv = &s.Received
		}
		rep.Processes = append(rep.Processes, ProcRow{
			PID: p.PID, Comm: p.Comm, SendErrors: s.SendErrors, Errnos: errnoMap(s.SendErrno),
			ErrorReports: s.ErrorReports, CountsExact: s.Exact, Received: recv,
			RetransSegs: s.Retrans.Total(), RetransKinds: kindsMap(&s.Retrans),
			RetransEvents: s.Retransmits, Connections: len(s.Conns),
		})
	}
	slices.SortFunc(rep.Processes, func(a, b ProcRow) int {
		return cmp.Or(
			cmp.Compare(b.SendErrors, a.SendErrors),
			cmp.Compare(b.ErrorReports, a.ErrorReports),
			cmp.Compare(b.RetransSegs, a.RetransSegs),
			cmp.Compare(a.PID, b.PID),
			strings.Compare(a.Comm, b.Comm))
	})
	rep.Processes = rep.Processes[:min(len(rep.Processes), o.Top)]

	var ttf []time.Duration
	for _, c := range r.sortedConns() {
		if c.Errno == 0 {
			continue
		}
		row := ConnRow{
			Cookie: c.Cookie, Dst: c.Dst, PID: c.Proc.PID, Comm: c.Proc.Comm,
			Errno: events.ErrnoName(c.Errno), RetransSegs: c.Retrans.Total(), RetransKinds: kindsMap(&c.Retrans),
			RetransEvents: c.Retransmits, SendErrors: c.SendErrors,
			StartSec: relSec(c.First, r.StartMono), TTFSec: -1,
		}
		if c.TTF >= 0 {
			row.TTFSec = secs(c.TTF)
			ttf = append(ttf, c.TTF)
		}
		rep.FailedConns = append(rep.FailedConns, row)
	}
	rep.TTF = percentiles(ttf)
	slices.SortFunc(rep.FailedConns, func(a, b ConnRow) int {
		return cmp.Or(cmp.Compare(a.StartSec, b.StartSec), cmp.Compare(a.Cookie, b.Cookie))
	})
	rep.Buckets = buckets(r, o.Bucket)
	return rep
}

// streamCut says where r's compressed stream ends before its end, for
// report's problems and diff's notes.
func streamCut(r *Recording) string {
	return fmt.Sprintf("the %s stream itself is cut off at byte %d, where the file ends: the file was not finished "+
		"(the recorder was killed or the disk filled up) or was copied before it was; every complete record before the cut was read", r.Compression, r.CutAt)
}

func problems(r *Recording) []string {
	var p []string
	if r.Footer == nil {
		p = append(p, fmt.Sprintf("footer missing: the recording was not stopped cleanly (killed, crashed, or the disk filled up); "+
			"all %d complete records were read, but the kernel's exact totals, lost-event counts and per-destination traffic are not in the file, "+
			"so counts below are from the events alone", r.Events+1))
	}
	switch {
	case r.CutAt > 0:
		p = append(p, streamCut(r))
	case r.Truncated:
		p = append(p, "the file ends inside a record; that last partial record was skipped")
	}
	if w := flightWindowOf(r); w != nil && w.EventsCounted > 0 {
		p = append(p, flightWindowProblem(w))
	}
	if r.Skipped > 0 {
		p = append(p, fmt.Sprintf("%d records of kinds this version does not know were skipped", r.Skipped))
	}
	if r.Footer != nil && r.Footer.Lost.Kernel+r.Footer.Lost.User > 0 {
		p = append(p, fmt.Sprintf("%d events were lost while recording (kernel %d, userspace %d): per-event tables undercount; kernel totals are exact",
			r.Footer.Lost.Kernel+r.Footer.Lost.User, r.Footer.Lost.Kernel, r.Footer.Lost.User))
	}
	return p
}

func flightWindowOf(r *Recording) *record.FlightWindow {
	if r.Footer == nil {
		return nil
	}
	return r.Footer.Window
}

// flightWindowProblem says which counts of a flight window are the
// kernel's.
func flightWindowProblem(w *record.FlightWindow) string {
	s := fmt.Sprintf("a window of a flight recording: %d of its %d segments lie wholly inside it and give the kernel's exact totals; "+
		"the counts of the other %d events (at the window's edges", w.KernelSegments, w.Segments, w.EventsCounted)
	if w.Unfinished > 0 {
		s += fmt.Sprintf(", in %d segments without a footer: the one serve is writing, or one cut short when serve was killed", w.Unfinished)
	}
	return s + ", or picked by a filter) are from the events alone"
}

func kindsMap(r *events.RetransSegs) map[string]uint64 {
	if r.Total() == 0 {
		return nil
	}
	return r.ByName()
}

// KindList writes retransmitted segments by kind in the kinds' fixed
// order, as the live text does: "rto 2, fast 30".
func KindList(m map[string]uint64) string {
	var r events.RetransSegs
	for name, n := range m {
		k, _ := events.ParseRetransKind(name) // "unknown": RetransNone
		r.Add(k, n)
	}
	return r.Kinds()
}

func errnoMap(m map[int32]uint64) map[string]uint64 {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]uint64, len(m))
	for n, v := range m {
		out[events.ErrnoName(n)] = v
	}
	return out
}

func relSec(mono, start uint64) float64 {
	if mono < start {
		return 0
	}
	return secs(time.Duration(mono - start))
}

var bucketSizes = []time.Duration{
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// maxBuckets keeps the automatic table to a screen.
const maxBuckets = 30

func buckets(r *Recording, width time.Duration) Buckets {
	span := r.Duration()
	if width <= 0 {
		width = bucketSizes[len(bucketSizes)-1]
		for _, s := range bucketSizes {
			if span/s < maxBuckets {
				width = s
				break
			}
		}
	}
	n := int(span/width) + 1
	// A user-given width over a long recording could ask for millions of
	// rows; empty trailing rows are not worth that.
	n = min(n, 100000)
	rows := make([]Bucket, n)
	for i := range rows {
		rows[i].StartSec = secs(time.Duration(i) * width)
	}
	r.points.each(func(p point) {
		var i int
		if p.mono > r.StartMono {
			i = int(time.Duration(p.mono-r.StartMono) / width)
		}
		if i >= len(rows) {
			i = len(rows) - 1
		}
		b := &rows[i]
		switch p.kind {
		case events.KindSendError:
			b.SendErrors++
		case events.KindErrorReport:
			b.ErrorReports++
		case events.KindRetransmit:
			b.RetransSegs += uint64(p.segs)
		case events.KindReceiveReset, events.KindSendReset:
			b.Resets++
		}
	})
	return Buckets{WidthSec: secs(width), Rows: rows}
}

// WriteJSON writes v as one indented JSON document, with every control
// character in its strings escaped (events.EscapeJSONControls).
func WriteJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(events.EscapeJSONControls(b.Bytes()))
	return err
}

// WriteText writes the report for a person: the recording's context, the
// live summary tables, then the post-mortem tables. Every string from the
// recording, and its path, goes through format.Printable.
func WriteText(w io.Writer, r *Recording, rep *Report) error {
	ew := &errWriter{w: w}
	h := r.Header
	p := format.Printable
	ew.printf("recording %s\n", p(r.Path))
	ew.printf("  host %s, kernel %s, sendtrace %s\n", p(orDash(h.Hostname)), p(orDash(h.KernelRelease)), p(orDash(h.SendtraceVersion)))
	ew.printf("  started %s, ran %s, %d events\n", h.StartTime.Local().Format("2006-01-02 15:04:05 MST"), format.Duration(r.Duration()), r.Events)
	if f := h.Filters.String(); f != "" {
		ew.printf("  filters: %s\n", p(f))
	}
	for _, hk := range h.Hooks {
		switch hk.Status() {
		case session.StatusOff:
			ew.printf("  layer %s %s\n", p(hk.Layer), p(hk.Why))
		case session.StatusDegraded:
			ew.printf("  degraded layer %s: %s\n", p(hk.Layer), p(hk.Why))
		}
	}
	for _, pr := range rep.Problems {
		ew.printf("warning: %s\n", p(pr))
	}
	ew.printf("\n")
	if ew.err != nil {
		return ew.err
	}
	var totals *events.Totals
	if r.Footer != nil {
		totals = r.Footer.EventsTotals()
	}
	if err := r.Summary.Render(w, totals); err != nil {
		return err
	}

	writeDests(ew, rep.Destinations)
	writeProcs(ew, rep.Processes)
	if len(rep.FailedConns) > 0 {
		ew.printf("\nFailed connections (from the events in the file; sendtrace report --conn COOKIE %s shows one in full)\n", p(r.Path))
		tw := ew.table()
		fmt.Fprintf(tw, "COOKIE\tDESTINATION\tPROCESS\tERRNO\tRETRANS SEGS\tRETRANS KINDS (SEGS)\tSEND ERRORS\tSTART\tTIME TO FAILURE\n")
		rows := rep.FailedConns
		more := 0
		if len(rows) > 50 {
			rows, more = rows[:50], len(rows)-50
		}
		for _, c := range rows {
			ttf := "-"
			if c.TTFSec >= 0 {
				ttf = format.Duration(time.Duration(c.TTFSec * 1e9))
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%d\t+%s\t%s\n", c.Cookie, p(orDash(c.Dst)), format.Process(c.Comm, c.PID, c.PID != 0),
				c.Errno, c.RetransSegs, KindList(c.RetransKinds), c.SendErrors, fmtSec(c.StartSec), ttf)
		}
		ew.flush(tw)
		if more > 0 {
			ew.printf("... %d more (see -o json)\n", more)
		}
	}
	if rep.TTF != nil {
		ew.printf("\nTime to failure, %s: n=%d p50=%s p95=%s max=%s\n",
			diagnose.TimeToFailureMeaning, rep.TTF.N, format.Duration(rep.TTF.P50), format.Duration(rep.TTF.P95), format.Duration(rep.TTF.Max))
	}
	writeBuckets(ew, rep.Buckets)
	if len(rep.Diagnoses) > 0 {
		ew.printf("\nDiagnoses\n")
		if err := diagnose.RenderSummary(ew, rep.Diagnoses); err != nil {
			return err
		}
		n := min(len(rep.Diagnoses), 20)
		for _, d := range rep.Diagnoses[:n] {
			ew.printf("  %s\n", d.String())
		}
		if more := len(rep.Diagnoses) - n; more > 0 {
			ew.printf("... %d more (see -o json)\n", more)
		}
	}
	writeSysctls(ew, rep.Namespaces)
	writeNetnsCounters(ew, rep.NetnsCounters)
	return ew.err
}

func writeDests(ew *errWriter, rows []DestRow) {
	if len(rows) == 0 {
		return
	}
	exact := false
	for _, d := range rows {
		exact = exact || d.CountsExact
	}
	ew.printf("\nTop failing destinations (send errors, error reports and resets: %s)\n", format.ExactNote(exact))
	tw := ew.table()
	fmt.Fprintf(tw, "DESTINATION\tSEND ERRORS\tERRNOS\tERROR REPORTS\tRETRANS SEGS\tRETRANS KINDS (SEGS)\tRESETS\tSENDS\tBYTES\tTIME TO FAILURE p50\n")
	for _, d := range rows {
		ttf := "-"
		if d.TTF != nil {
			ttf = format.Duration(d.TTF.P50)
		}
		recv := DestReceived{SendErrors: d.SendErrors, ErrorReports: d.ErrorReports, Resets: d.Resets}
		if d.Received != nil {
			recv = *d.Received
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", format.Printable(orDash(d.Dst)), format.Counted(d.SendErrors, recv.SendErrors), ErrnoList(d.Errnos),
			format.Counted(d.ErrorReports, recv.ErrorReports), d.RetransSegs, KindList(d.RetransKinds), format.Counted(d.Resets, recv.Resets), optU(d.Sends), optU(d.Bytes), ttf)
	}
	ew.flush(tw)
}

func writeProcs(ew *errWriter, rows []ProcRow) {
	if len(rows) == 0 {
		return
	}
	exact := false
	for _, p := range rows {
		exact = exact || p.CountsExact
	}
	ew.printf("\nTop failing processes (send errors and error reports: %s)\n", format.ExactNote(exact))
	tw := ew.table()
	fmt.Fprintf(tw, "PID\tCOMM\tSEND ERRORS\tERRNOS\tERROR REPORTS\tRETRANS SEGS\tRETRANS KINDS (SEGS)\tCONNECTIONS\n")
	for _, p := range rows {
		recv := ProcFailures{SendErrors: p.SendErrors, ErrorReports: p.ErrorReports}
		if p.Received != nil {
			recv = *p.Received
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\n", pidText(p.PID), format.Printable(orDash(p.Comm)), format.Counted(p.SendErrors, recv.SendErrors), ErrnoList(p.Errnos),
			format.Counted(p.ErrorReports, recv.ErrorReports), p.RetransSegs, KindList(p.RetransKinds), p.Connections)
	}
	ew.flush(tw)
}

func writeBuckets(ew *errWriter, b Buckets) {
	var top uint64
	last := -1
	for i, r := range b.Rows {
		f := r.SendErrors + r.ErrorReports + r.Resets
		top = max(top, f)
		if f+r.RetransSegs > 0 {
			last = i
		}
	}
	if last < 0 {
		return
	}
	ew.printf("\nFailures over time (buckets of %s from the start; from the events in the file)\n", format.Duration(time.Duration(b.WidthSec*1e9)))
	tw := ew.table()
	fmt.Fprintf(tw, "FROM\tSEND ERRORS\tERROR REPORTS\tRESETS\tRETRANS SEGS\tFAILURES\n")
	const barWidth = 30
	for _, r := range b.Rows[:last+1] {
		f := r.SendErrors + r.ErrorReports + r.Resets
		bar := ""
		if top > 0 && f > 0 {
			bar = strings.Repeat("#", int((f*barWidth+top-1)/top))
		}
		fmt.Fprintf(tw, "+%s\t%d\t%d\t%d\t%d\t%s\n", fmtSec(r.StartSec), r.SendErrors, r.ErrorReports, r.Resets, r.RetransSegs, bar)
	}
	ew.flush(tw)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func (e *errWriter) table() *tabwriter.Writer {
	return tabwriter.NewWriter(e, 0, 0, 2, ' ', 0)
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) flush(tw *tabwriter.Writer) {
	if err := tw.Flush(); err != nil && e.err == nil {
		e.err = err
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func optU(p *uint64) string {
	if p == nil {
		return "?"
	}
	return strconv.FormatUint(*p, 10)
}

func pidText(pid uint32) string {
	if pid == 0 {
		return "?"
	}
	return strconv.FormatUint(uint64(pid), 10)
}

// ErrnoList writes errno counts most frequent first ("ETIMEDOUT:3
// EPIPE:1"), or "-" when there are none.
func ErrnoList(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	type kv struct {
		k string
		v uint64
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	slices.SortFunc(l, func(a, b kv) int { return cmp.Or(cmp.Compare(b.v, a.v), strings.Compare(a.k, b.k)) })
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = fmt.Sprintf("%s:%d", e.k, e.v)
	}
	return strings.Join(parts, " ")
}

func fmtSec(s float64) string {
	return strconv.FormatFloat(s, 'f', 3, 64)
}
