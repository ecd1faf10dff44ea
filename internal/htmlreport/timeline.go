package htmlreport

import (
	"slices"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

// Geometry of a connection's drawing, in SVG user units; the page scales
// the whole picture to its width.
const (
	tlWidth   = 960
	tlLeft    = 96
	tlRight   = 24
	seqHeight = 150
	rtoHeight = 56
	sqHeight  = 56
	laneRow   = 22
	panelGap  = 14
)

// timelineSVG is what the template draws for one connection.
type timelineSVG struct {
	Cookie        uint64
	Width, Height px
	Left, Right   px
	Panels        []panel
	XTicks        []axisTick
	AxisY         px
	Shades        []shade
	Guides        []line
	Segs          []line
	Marks         []mark
	Paths         []path
	Labels        []label
	Retransmits   int
	RetransSegs   uint64
	Summary       string // the picture in words, for screen readers and print
}

type panel struct {
	Title  string
	Top    px
	Height px
	YTicks []axisTick
}

type line struct {
	X1, Y1, X2, Y2 px
	Class          string
}

type shade struct {
	X, Y, W, H px
	Label      string
	LabelX     px
	LabelY     px
	Title      string
}

// mark is one event: its shape (circle, diamond, triangle, cross, tick),
// its class (which the tests and the styles key on) and its hover text.
type mark struct {
	Shape string
	Class string
	X, Y  px
	Title string
}

type path struct {
	D     string
	Class string
}

type label struct {
	X, Y   px
	Text   string
	Class  string
	Anchor string
}

// lanes are the rows under the graphs, one per kind of event that has no
// sequence number.
var lanes = []struct {
	name  string
	kinds []events.Kind
}{
	{"send error", []events.Kind{events.KindSendError}},
	{"error report", []events.Kind{events.KindErrorReport}},
	{"reset", []events.Kind{events.KindReceiveReset, events.KindSendReset}},
	{"state", []events.Kind{events.KindStateChange}},
}

// drawTimeline lays out one socket's events: a time–sequence graph of its
// retransmits, the RTO they waited, its Send-Q, and a row per kind of
// event, on one time axis from the socket's first event. The idle time
// before a reset or a timeout is shaded across all of it.
func drawTimeline(cookie uint64, evs []events.Event) *timelineSVG {
	v := &timelineSVG{Cookie: cookie, Width: tlWidth, Left: tlLeft, Right: tlWidth - tlRight}
	if len(evs) == 0 {
		return v
	}
	origin := evs[0].Mono
	rel := func(mono uint64) float64 { return float64(int64(mono-origin)) / 1e9 }

	var rtx []*events.Event
	tcp := false
	for i := range evs {
		e := &evs[i]
		if e.Kind == events.KindRetransmit {
			rtx = append(rtx, e)
		}
		tcp = tcp || e.Protocol == events.ProtoTCP
	}

	// The idle gap: the peer's silence before the event that ended the
	// connection, when it is long enough to see.
	var idleFrom, idleTo float64
	var idleEv *events.Event
	for i := range evs {
		e := &evs[i]
		if e.Kind == events.KindReceiveReset || e.Kind == events.KindErrorReport {
			idleEv = e
			break
		}
	}
	d0, d1 := 0.0, rel(evs[len(evs)-1].Mono)
	if idleEv != nil && idleEv.SinceRecv >= 500*time.Millisecond && len(rtx) == 0 {
		idleTo = rel(idleEv.Mono)
		idleFrom = idleTo - idleEv.SinceRecv.Seconds()
		d0 = min(d0, idleFrom)
	}
	if d1-d0 < 1e-3 {
		d1 = d0 + 1e-3
	}
	pad := (d1 - d0) * 0.03
	xs := scale{d0: d0 - pad, d1: d1 + pad, lo: tlLeft, hi: tlWidth - tlRight}
	x := func(mono uint64) px { return xs.at(rel(mono)) }

	y := px(32)
	if len(rtx) > 0 {
		v.seqPanel(rtx, origin, x, y)
		y += seqHeight + panelGap
		v.rtoPanel(rtx, x, y)
		y += rtoHeight + panelGap
	}
	if tcp {
		v.sendQPanel(evs, x, y)
		y += sqHeight + panelGap
	}
	y = v.eventLanes(evs, x, origin, y, 20, nil)
	v.timeAxis(xs, y)

	if idleEv != nil && idleTo > idleFrom {
		x0, x1 := xs.at(idleFrom), xs.at(idleTo)
		what := "no data from the peer for " + format.Duration(idleEv.SinceRecv)
		v.Shades = append(v.Shades, shade{X: x0, Y: 4, W: x1 - x0, H: v.AxisY - 4, Label: what, LabelX: x0 + 6, LabelY: 15,
			Title: what + " before the " + idleEv.Kind.String() + " (since_recv); since_send " + format.Duration(idleEv.SinceSend)})
	}
	return v
}

// timeAxis labels the time axis under the drawing's bottom y, with the
// ticks kept inside the plot, and sets the drawing's height.
func (v *timelineSVG) timeAxis(xs scale, y px) {
	v.AxisY = y + 4
	v.XTicks = nil
	for _, t := range timeTicks(xs, 8) {
		if t.At >= tlLeft && t.At <= tlWidth-tlRight {
			v.XTicks = append(v.XTicks, t)
		}
	}
	v.Height = v.AxisY + 30
}

// annotation is what a drawing of both ends adds to an event's mark: a
// label in place of the usual one, classes, and words for its hover text.
type annotation struct{ Text, Class, Title string }

// eventLanes draws a row per kind of event without a sequence number from
// top, with guides up to guideTop, and returns the rows' bottom. note, when
// not nil, annotates some events.
func (v *timelineSVG) eventLanes(evs []events.Event, x func(uint64) px, origin uint64, top, guideTop px, note func(*events.Event) annotation) px {
	v.Panels = append(v.Panels, panel{Title: "", Top: top, Height: px(laneRow * len(lanes))})
	for li, ln := range lanes {
		ly := top + px(li*laneRow+laneRow/2)
		v.Labels = append(v.Labels, label{X: tlLeft - 8, Y: ly + 4, Text: ln.name, Class: "lane", Anchor: "end"})
		v.Segs = append(v.Segs, line{X1: tlLeft, Y1: ly, X2: tlWidth - tlRight, Y2: ly, Class: "laneline"})
		lastLabel := px(-1000)
		for i := range evs {
			e := &evs[i]
			if !slices.Contains(ln.kinds, e.Kind) {
				continue
			}
			var a annotation
			if note != nil {
				a = note(e)
			}
			mx := x(e.Mono)
			m := mark{Shape: shapeOf(e.Kind), Class: markClass(e), X: mx, Y: ly, Title: hover(e, origin)}
			if a.Class != "" {
				m.Class += " " + a.Class
			}
			if a.Title != "" {
				m.Title += "\n" + a.Title
			}
			v.Marks = append(v.Marks, m)
			if mx-lastLabel > 90 || a.Text != "" {
				text := laneText(e)
				if a.Text != "" {
					text = a.Text
				}
				// Near the right edge the label goes to the mark's left.
				l := label{X: mx + 7, Y: ly - 5, Text: text, Class: "marklabel " + markClass(e)}
				if mx > tlWidth-tlRight-110-px(4*len(a.Text)) {
					l.X, l.Anchor = mx-8, "end"
				}
				v.Labels = append(v.Labels, l)
				lastLabel = mx
			}
			if e.Kind != events.KindStateChange {
				v.Guides = append(v.Guides, line{X1: mx, Y1: guideTop, X2: mx, Y2: ly, Class: "guide " + markClass(e)})
			}
		}
	}
	return top + px(laneRow*len(lanes))
}

func (v *timelineSVG) seqPanel(rtx []*events.Event, origin uint64, x func(uint64) px, top px) {
	base := lowestSeq(rtx)
	off := func(seq uint32) float64 { return float64(int32(seq - base)) }
	hi := 1.0
	for _, e := range rtx {
		hi = max(hi, off(e.Seq)+float64(e.Bytes))
	}
	ys := scale{d0: 0, d1: hi, lo: float64(top + seqHeight), hi: float64(top)}
	v.Panels = append(v.Panels, panel{Title: "sequence (bytes after " + strconv.FormatUint(uint64(base), 10) + ")",
		Top: top, Height: seqHeight, YTicks: countTicks(ys, 4, "")})
	// A legend for the kinds of retransmit this socket had: each kind
	// has its shape and colour, and says how many segments it carried.
	var n [len(rtxKinds)]int
	var segs events.RetransSegs
	failed := 0
	for _, e := range rtx {
		n[rtxKindIndex(e)]++
		segs.Observe(e)
		if e.RetransErr != 0 {
			failed++
		}
	}
	lx := px(tlWidth - tlRight)
	legend := func(class, text string) {
		v.Labels = append(v.Labels, label{X: lx, Y: top - 3, Text: text, Class: "legend " + class, Anchor: "end"})
		lx -= px(14 + 7*len([]rune(text)))
	}
	if failed > 0 {
		legend("rtx-failed", "● not sent (err) "+strconv.Itoa(failed))
	}
	for i := len(rtxKinds) - 1; i >= 0; i-- {
		if n[i] == 0 {
			continue
		}
		k := rtxKinds[i]
		legend(k.class, k.glyph+" "+k.name+" "+strconv.Itoa(n[i])+" ("+strconv.FormatUint(segs[k.kind], 10)+" segs)")
	}
	for _, e := range rtx {
		mx := x(e.Mono)
		y0, y1 := ys.at(off(e.Seq)), ys.at(off(e.Seq)+float64(e.Bytes))
		if y0-y1 < 3 {
			y1 = y0 - 3
		}
		k := rtxKinds[rtxKindIndex(e)]
		cls := k.class + " " + rtxClass(e)
		v.Segs = append(v.Segs, line{X1: mx, Y1: y0, X2: mx, Y2: y1, Class: "seg " + cls})
		v.Marks = append(v.Marks, mark{Shape: k.shape, Class: "mark-retransmit " + cls, X: mx, Y: y0, Title: hover(e, origin)})
		v.Retransmits++
	}
	v.RetransSegs += segs.Total()
}

// lowestSeq is the lowest sequence number among the retransmits, in
// sequence space (which wraps): the zero of the graph, so that every
// segment drawn lies at or above it. The first retransmit is not always
// the lowest: a tail loss probe resends the newest segment, and the
// timeout that follows goes back to the oldest.
func lowestSeq(rtx []*events.Event) uint32 {
	base := rtx[0].Seq
	for _, e := range rtx[1:] {
		if int32(e.Seq-base) < 0 {
			base = e.Seq
		}
	}
	return base
}

// rtxKinds is how each kind of retransmit is drawn: a shape, so that the
// kinds stay apart in print and for a reader who does not tell the
// colours apart, and a class (retrans-rto ...) that colours it.
var rtxKinds = [...]struct {
	kind         events.RetransKind
	name, class  string
	shape, glyph string
}{
	{events.RetransRTO, "rto", "retrans-rto", "circle", "●"},
	{events.RetransFast, "fast", "retrans-fast", "square", "■"},
	{events.RetransTLP, "tlp", "retrans-tlp", "triangle", "▲"},
	{events.RetransSYN, "syn", "retrans-syn", "diamond", "◆"},
	{events.RetransSYNACK, "synack", "retrans-synack", "diamond", "◆"},
	// A recording made before sendtrace told the kinds apart.
	{events.RetransNone, "retransmit", "retrans-unknown", "circle", "○"},
}

func rtxKindIndex(e *events.Event) int {
	for i, k := range rtxKinds {
		if k.kind == e.RetransKind {
			return i
		}
	}
	return len(rtxKinds) - 1
}

func (v *timelineSVG) rtoPanel(rtx []*events.Event, x func(uint64) px, top px) {
	var hi time.Duration
	for _, e := range rtx {
		hi = max(hi, e.RTO)
	}
	ys := scale{d0: 0, d1: float64(max(hi, time.Millisecond)), lo: float64(top + rtoHeight), hi: float64(top + 4)}
	v.Panels = append(v.Panels, panel{Title: "RTO", Top: top, Height: rtoHeight,
		YTicks: []axisTick{{At: ys.at(float64(hi)), Label: format.Duration(hi)}, {At: ys.at(0), Label: "0"}}})
	var d stepPath
	lastLabel := px(-1000)
	for _, e := range rtx {
		mx, my := x(e.Mono), ys.at(float64(e.RTO))
		d = d.to(mx, my)
		v.Marks = append(v.Marks, mark{Shape: "dot", Class: "rto", X: mx, Y: my,
			Title: "RTO " + format.Duration(e.RTO) + ", backoff " + strconv.Itoa(int(e.Backoff)) + ", retransmits " + strconv.Itoa(int(e.Retransmits))})
		if mx-lastLabel > 56 {
			t := format.Duration(e.RTO)
			if e.Backoff > 0 {
				t += " b" + strconv.Itoa(int(e.Backoff))
			}
			v.Labels = append(v.Labels, label{X: mx + 4, Y: my - 4, Text: t, Class: "rtolabel"})
			lastLabel = mx
		}
	}
	v.Paths = append(v.Paths, path{D: string(d), Class: "rtoline"})
}

func (v *timelineSVG) sendQPanel(evs []events.Event, x func(uint64) px, top px) {
	var hi uint32 = 1
	for i := range evs {
		hi = max(hi, evs[i].SendQ)
	}
	ys := scale{d0: 0, d1: float64(hi), lo: float64(top + sqHeight), hi: float64(top + 4)}
	v.Panels = append(v.Panels, panel{Title: "Send-Q", Top: top, Height: sqHeight,
		YTicks: []axisTick{{At: ys.at(float64(hi)), Label: humanCount(float64(hi)) + " B"}, {At: ys.at(0), Label: "0"}}})
	var d stepPath
	for i := range evs {
		e := &evs[i]
		if e.Protocol != events.ProtoTCP || e.Kind == events.KindStateChange {
			continue
		}
		d = d.to(x(e.Mono), ys.at(float64(e.SendQ)))
	}
	if d != nil {
		v.Paths = append(v.Paths, path{D: string(d), Class: "sendq"})
	}
}

func shapeOf(k events.Kind) string {
	switch k {
	case events.KindSendError:
		return "diamond"
	case events.KindErrorReport:
		return "triangle"
	case events.KindReceiveReset, events.KindSendReset:
		return "cross"
	}
	return "tick"
}

// markClass names an event for the styles and the tests.
func markClass(e *events.Event) string {
	switch e.Kind {
	case events.KindSendError:
		return "mark-send-error"
	case events.KindErrorReport:
		return "mark-error-report"
	case events.KindReceiveReset:
		return "mark-reset mark-reset-in"
	case events.KindSendReset:
		return "mark-reset mark-reset-out"
	}
	return "mark-state"
}

// rtxClass tells the retransmits apart where the event says how: a SYN
// that was never answered, and (kernel 6.17 and later) one the kernel
// failed to send.
func rtxClass(e *events.Event) string {
	switch {
	case e.RetransErr != 0:
		return "rtx-failed"
	case e.State == events.StateSynSent:
		return "rtx-syn"
	}
	return "rtx-data"
}

func laneText(e *events.Event) string {
	switch e.Kind {
	case events.KindSendError:
		t := events.ErrnoName(e.Errno)
		if e.Syscall != "" {
			t += " " + format.Printable(e.Syscall)
		}
		return t
	case events.KindErrorReport:
		return events.ErrnoName(e.Errno)
	case events.KindReceiveReset:
		return "RST from peer"
	case events.KindSendReset:
		return "RST sent"
	}
	return events.StateName(e.State)
}

// hover is an event's tooltip: its time from the socket's first event,
// then the same one-line form as report --conn.
func hover(e *events.Event, origin uint64) string {
	b := append([]byte(signedDuration(time.Duration(int64(e.Mono-origin)))), ' ')
	return string(format.AppendEvent(b, e))
}

// stepPath is an SVG path that holds each value until the next one: what
// a setting such as the RTO or a queue's length does between events.
type stepPath []byte

func (p stepPath) to(x, y px) stepPath {
	if len(p) == 0 {
		p = append(p, 'M')
		p = append(p, x.String()...)
		p = append(p, ',')
		return append(p, y.String()...)
	}
	p = append(p, " H"...)
	p = append(p, x.String()...)
	p = append(p, " V"...)
	return append(p, y.String()...)
}
