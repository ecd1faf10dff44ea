package htmlreport

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/report"
)

// Geometry of the failures-over-time chart.
const (
	chWidth  = 960
	chLeft   = 64
	chRight  = 16
	chTop    = 12
	chFail   = 160
	chGap    = 26
	chLower  = 90
	chLegend = 22
)

// timeChart is failed sends per time bucket stacked by errno, with
// retransmitted segments, error reports and resets per bucket under it on
// the same time axis.
type timeChart struct {
	Width, Height px
	Left, Right   px
	FailTop       px
	FailBottom    px
	LowerTop      px
	LowerBottom   px
	Bars          []bar
	Lower         []bar
	XTicks        []axisTick
	FailTicks     []axisTick
	LowerTicks    []axisTick
	Legend        []legendItem
	LowerLegend   []legendItem
	AxisY         px
	BucketText    string
}

type bar struct {
	X, Y, W, H px
	Class      string
	Title      string
}

type legendItem struct {
	X     px
	Class string
	Text  string
}

// errnoColours is how many errnos get their own colour; the rest share
// the last one.
const errnoColours = 8

func failuresChart(rec *report.Recording, col *Collector, b report.Buckets) *timeChart {
	last := -1
	for i, r := range b.Rows {
		if r.SendErrors+r.ErrorReports+r.Resets+r.RetransSegs > 0 {
			last = i
		}
	}
	if last < 0 {
		return nil
	}
	rows := b.Rows[:last+1]
	width := time.Duration(b.WidthSec * 1e9)
	// Failed sends per bucket and errno, from the collector's ticks: the
	// report's buckets count by kind only.
	perErrno := map[int32][]uint64{}
	total := map[int32]uint64{}
	for _, t := range col.ticks {
		if t.kind != events.KindSendError {
			continue
		}
		i := 0
		if t.mono > rec.StartMono {
			i = int(time.Duration(t.mono-rec.StartMono) / width)
		}
		i = min(i, len(rows)-1)
		s := perErrno[t.errno]
		if s == nil {
			s = make([]uint64, len(rows))
			perErrno[t.errno] = s
		}
		s[i]++
		total[t.errno]++
	}
	errnos := make([]int32, 0, len(total))
	for n := range total {
		errnos = append(errnos, n)
	}
	slices.SortFunc(errnos, func(a, b int32) int { return cmp.Or(cmp.Compare(total[b], total[a]), cmp.Compare(a, b)) })

	c := &timeChart{Width: chWidth, Left: chLeft, Right: chWidth - chRight,
		FailTop: chTop + chLegend, BucketText: format.Duration(width)}
	c.FailBottom = c.FailTop + chFail
	c.LowerTop = c.FailBottom + chGap + chLegend
	c.LowerBottom = c.LowerTop + chLower
	c.AxisY = c.LowerBottom + 4
	c.Height = c.AxisY + 26

	n := len(rows)
	xs := scale{d0: 0, d1: float64(n), lo: chLeft, hi: chWidth - chRight}
	bw := max(xs.at(1)-xs.at(0)-1, 1)

	var topFail uint64 = 1
	for i := range rows {
		var s uint64
		for _, e := range errnos {
			s += perErrno[e][i]
		}
		topFail = max(topFail, s)
	}
	fy := scale{d0: 0, d1: float64(topFail), lo: float64(c.FailBottom), hi: float64(c.FailTop)}
	c.FailTicks = countTicks(fy, 4, "")
	for i := range rows {
		y := c.FailBottom
		for ci, e := range errnos {
			v := perErrno[e][i]
			if v == 0 {
				continue
			}
			h := c.FailBottom - fy.at(float64(v))
			y -= h
			c.Bars = append(c.Bars, bar{X: xs.at(float64(i)), Y: y, W: bw, H: h, Class: "errno" + strconv.Itoa(min(ci, errnoColours-1)),
				Title: bucketName(rows[i].StartSec, width) + ": " + strconv.FormatUint(v, 10) + " failed sends " + events.ErrnoString(e)})
		}
	}
	lx := px(chLeft)
	for ci, e := range errnos {
		if ci == errnoColours {
			c.Legend = append(c.Legend, legendItem{X: lx, Class: "errno" + strconv.Itoa(errnoColours-1), Text: "others"})
			break
		}
		t := events.ErrnoName(e) + " " + strconv.FormatUint(total[e], 10)
		c.Legend = append(c.Legend, legendItem{X: lx, Class: "errno" + strconv.Itoa(ci), Text: t})
		lx += px(24 + 7*len(t))
	}

	var topLower uint64 = 1
	for _, r := range rows {
		topLower = max(topLower, r.RetransSegs, r.ErrorReports, r.Resets)
	}
	ly := scale{d0: 0, d1: float64(topLower), lo: float64(c.LowerBottom), hi: float64(c.LowerTop)}
	c.LowerTicks = countTicks(ly, 3, "")
	third := bw / 3
	for i, r := range rows {
		x := xs.at(float64(i))
		for k, s := range []struct {
			v     uint64
			class string
			what  string
		}{{r.RetransSegs, "retransmits", "retransmitted segments"}, {r.ErrorReports, "errreports", "error reports"}, {r.Resets, "resets", "resets"}} {
			if s.v == 0 {
				continue
			}
			// Segments can outnumber error reports a thousandfold on
			// the shared axis: a non-zero count stays visible.
			y := min(ly.at(float64(s.v)), c.LowerBottom-2)
			c.Lower = append(c.Lower, bar{X: x + px(k)*third, Y: y, W: max(third-0.5, 0.5), H: c.LowerBottom - y, Class: s.class,
				Title: bucketName(r.StartSec, width) + ": " + strconv.FormatUint(s.v, 10) + " " + s.what})
		}
	}
	c.LowerLegend = []legendItem{{X: chLeft, Class: "retransmits", Text: "retransmitted segments"}, {X: chLeft + 200, Class: "errreports", Text: "error reports"},
		{X: chLeft + 330, Class: "resets", Text: "resets"}}

	step := max(1, n/8)
	for i := 0; i <= n; i += step {
		c.XTicks = append(c.XTicks, axisTick{At: xs.at(float64(i)), Label: signedDuration(time.Duration(i) * width)})
	}
	return c
}

func bucketName(startSec float64, width time.Duration) string {
	start := time.Duration(startSec * 1e9)
	return signedDuration(start) + " to " + signedDuration(start+width)
}
