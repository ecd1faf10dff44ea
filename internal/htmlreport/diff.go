package htmlreport

import (
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/report"
)

// diffPage is what the template renders for two recordings.
type diffPage struct {
	Title      string
	Generated  string
	Sides      [2]sideView
	Sysctls    []report.SysctlDiff
	Compared   int
	Notes      []string
	Metrics    []metricView
	TTF        ttfView
	Dests      []destDiffView
	Thresholds report.Thresholds
}

type sideView struct {
	Which, File, Host, Kernel, Start, Duration string
	Complete                                   bool
	Sends, Bytes                               string
	Failed                                     int
}

type metricView struct {
	Name            string
	Before, After   string
	BeforeN, AfterN uint64
	Verdict, Class  string
	Change, Why     string
}

type ttfView struct {
	Verdict, Class string
	Change         string
	Rows           [2]ttfRow
	Chart          *ttfChart
}

type ttfRow struct {
	Which              string
	N                  int
	Min, P50, P95, Max string
}

type destDiffView struct {
	Dst                             string
	Before, After                   report.DestMeasures
	FailedBefore, FailedAfter       string
	RetransBefore, RetransAfter     string
	TTFBefore, TTFAfter, TTFVerdict string
	Class                           string
}

// WriteDiff writes the page comparing two recordings.
func WriteDiff(w io.Writer, before, after *report.Recording) error {
	return pageTemplate.ExecuteTemplate(w, "diff", buildDiff(before, after))
}

func buildDiff(a, b *report.Recording) *diffPage {
	d := report.Compare(a, b)
	p := &diffPage{
		Title:      "sendtrace diff: " + a.Header.Hostname + " / " + b.Header.Hostname,
		Generated:  time.Now().UTC().Format(time.RFC3339),
		Sysctls:    d.Sysctls,
		Compared:   d.SysctlsCompared,
		Notes:      d.Notes,
		Thresholds: d.Thresholds,
	}
	for i, s := range []report.Side{d.Before, d.After} {
		rec := []*report.Recording{a, b}[i]
		p.Sides[i] = sideView{Which: []string{"before", "after"}[i], File: s.File, Host: s.Hostname, Kernel: s.KernelRelease,
			Start: s.Start, Duration: format.Duration(time.Duration(s.DurationSec * 1e9)), Complete: s.Complete,
			Sends: optCount(s.Sends), Bytes: optCount(s.Bytes), Failed: len(rec.TTF())}
	}
	for _, m := range d.Metrics {
		v := metricView{Name: m.Name, Before: optRate(m.Before), After: optRate(m.After), BeforeN: m.BeforeN, AfterN: m.AfterN,
			Verdict: m.Verdict, Class: verdictClass(m.Verdict), Why: m.Why}
		if m.ChangePct != nil {
			v.Change = signedPct(*m.ChangePct)
		}
		p.Metrics = append(p.Metrics, v)
	}
	p.TTF = ttfView{Verdict: d.TTF.Verdict, Class: verdictClass(d.TTF.Verdict),
		Rows: [2]ttfRow{ttfRowOf("before", d.TTF.Before), ttfRowOf("after", d.TTF.After)}}
	if d.TTF.ChangeP50Pct != nil {
		p.TTF.Change = signedPct(*d.TTF.ChangeP50Pct)
	}
	p.TTF.Chart = drawTTF(a.TTF(), b.TTF(), d.TTF.Before, d.TTF.After)
	for _, dd := range d.Destinations {
		p.Dests = append(p.Dests, destDiffView{
			Dst: dd.Dst, Before: dd.Before, After: dd.After,
			FailedBefore: optRate(dd.Before.FailedPer1000), FailedAfter: optRate(dd.After.FailedPer1000),
			RetransBefore: optRate(dd.Before.RetransPerMB), RetransAfter: optRate(dd.After.RetransPerMB),
			TTFBefore: p50Of(dd.Before.TTF), TTFAfter: p50Of(dd.After.TTF), TTFVerdict: dd.TTF, Class: verdictClass(dd.TTF),
		})
	}
	return p
}

func ttfRowOf(which string, p *report.Percentiles) ttfRow {
	r := ttfRow{Which: which, Min: "-", P50: "-", P95: "-", Max: "-"}
	if p != nil {
		r.N = p.N
		r.Min, r.P50, r.P95, r.Max = format.Duration(p.Min), format.Duration(p.P50), format.Duration(p.P95), format.Duration(p.Max)
	}
	return r
}

func p50Of(p *report.Percentiles) string {
	if p == nil {
		return "-"
	}
	return format.Duration(p.P50) + " (n=" + strconv.Itoa(p.N) + ")"
}

// verdictClass colours a verdict: only a real change stands out.
func verdictClass(v string) string {
	switch v {
	case report.VerdictChanged:
		return "v-changed"
	case report.VerdictSame, report.VerdictUnchanged:
		return "v-same"
	}
	return "v-unknown"
}

func optCount(v *uint64) string {
	if v == nil {
		return "not counted"
	}
	return strconv.FormatUint(*v, 10)
}

func optRate(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'g', 4, 64)
}

func signedPct(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64) + "%"
	if v > 0 {
		s = "+" + s
	}
	return s
}

// ttfChart puts both recordings' times to failure on one axis: a dot per
// failed connection, and the median and 95th percentile as ticks.
type ttfChart struct {
	Width, Height px
	Left, Right   px
	Rows          []ttfChartRow
	XTicks        []axisTick
	AxisY         px
}

type ttfChartRow struct {
	Which    string
	Y        px
	Dots     []mark
	Bins     []bar // instead of dots when there are too many to draw
	P50, P95 px
	HasP     bool
}

// maxTTFDots is the most connections a side draws one dot each for;
// above it the side is drawn as a histogram, so that a large recording's
// diff stays small.
const maxTTFDots = 500

// ttfBins is the histogram's resolution.
const ttfBins = 120

func drawTTF(before, after []time.Duration, pb, pa *report.Percentiles) *ttfChart {
	if len(before)+len(after) == 0 {
		return nil
	}
	var hi time.Duration
	for _, d := range append(before, after...) {
		hi = max(hi, d)
	}
	hi = max(hi, time.Millisecond)
	c := &ttfChart{Width: 960, Left: 96, Right: 960 - 24, Height: 150, AxisY: 116}
	xs := scale{d0: 0, d1: hi.Seconds() * 1.05, lo: float64(c.Left), hi: float64(c.Right)}
	for i, side := range [][]time.Duration{before, after} {
		row := ttfChartRow{Which: []string{"before", "after"}[i], Y: px(34 + 50*i)}
		if len(side) > maxTTFDots {
			row.Bins = ttfHistogram(side, xs, row)
		} else {
			for j, d := range side {
				// A small vertical jitter keeps equal times apart.
				row.Dots = append(row.Dots, mark{X: xs.at(d.Seconds()), Y: row.Y + px((j%5)-2)*3, Class: "ttf-" + row.Which,
					Title: row.Which + ": time to failure " + format.Duration(d)})
			}
		}
		if p := []*report.Percentiles{pb, pa}[i]; p != nil {
			row.HasP, row.P50, row.P95 = true, xs.at(p.P50.Seconds()), xs.at(p.P95.Seconds())
		}
		c.Rows = append(c.Rows, row)
	}
	c.XTicks = timeTicks(xs, 8)
	return c
}

// ttfHistogram counts one side's times to failure in equal bins across
// the axis and draws each bin as a bar centred on the row.
func ttfHistogram(side []time.Duration, xs scale, row ttfChartRow) []bar {
	counts := make([]int, ttfBins)
	width := (xs.d1 - xs.d0) / ttfBins
	for _, d := range side {
		counts[min(int((d.Seconds()-xs.d0)/width), ttfBins-1)]++
	}
	top := slices.Max(counts)
	var out []bar
	for i, n := range counts {
		if n == 0 {
			continue
		}
		h := max(px(float64(n)/float64(top)*36), 1)
		lo := time.Duration((xs.d0 + float64(i)*width) * 1e9)
		hi := time.Duration((xs.d0 + float64(i+1)*width) * 1e9)
		out = append(out, bar{X: xs.at(xs.d0 + float64(i)*width), Y: row.Y - h/2, W: max(xs.at(width)-xs.at(0)-0.5, 1), H: h,
			Class: "ttf-" + row.Which, Title: row.Which + ": " + strconv.Itoa(n) + " connections failed after " + format.Duration(lo) + " to " + format.Duration(hi)})
	}
	return out
}
