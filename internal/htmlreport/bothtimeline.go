package htmlreport

import (
	"strconv"
	"strings"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/join"
)

// bothDrawing is a connection's drawing, each end's events for the tables
// under it, and the moment the axis counts from, on each end's
// CLOCK_MONOTONIC.
type bothDrawing struct {
	Chart   *timelineSVG
	Events  [2][]eventRow
	Omitted [2]int
	Origin  [2]uint64
}

// Geometry of a drawing of both ends, beside the one of a socket's.
const (
	endHeader = 24 // the row that names an end
	endGap    = 20
)

// endEvents are the events of one end that its lane draws, from its
// SYN_SENT when seen: past maxConnEvents, send errors and retransmits are
// counted and left out, as on the page of one recording.
func endEvents(e *join.End) (kept []events.Event, omitted int) {
	for _, evs := range [][]events.Event{e.Handshake, e.Events} {
		for i := range evs {
			if overCap(len(kept), evs[i].Kind) {
				omitted++
				continue
			}
			kept = append(kept, evs[i])
		}
	}
	return kept, omitted
}

// drawBothEnds puts the two sockets of a connection in two lanes on one
// time axis: end 0's clock, onto which end 1's times are moved by the
// estimated offset. Each lane has its retransmits by kind and a row per
// kind of event, as a socket's own drawing has; the idle time before the
// failure is shaded in each lane, the reset is named by its origin, and the
// receiver's event that tells where retransmitted data stopped is marked.
func drawBothEnds(c *join.Conn) *bothDrawing {
	v := &timelineSVG{Cookie: c.Ends[0].Cookie, Width: tlWidth, Left: tlLeft, Right: tlWidth - tlRight}
	var evs [2][]events.Event
	var omitted [2]int
	for i, e := range c.Ends {
		evs[i], omitted[i] = endEvents(e)
	}
	origin := c.OnClock(evs[1][0].Time, 1, 0)
	if t := evs[0][0].Time; t.Before(origin) {
		origin = t
	}
	rel := func(i int, t time.Time) float64 { return c.OnClock(t, i, 0).Sub(origin).Seconds() }
	// Within a recording, wall time and CLOCK_MONOTONIC move together.
	wall := func(i int, mono uint64) time.Time {
		ref := &evs[i][0]
		return ref.Time.Add(time.Duration(int64(mono - ref.Mono)))
	}

	d0, d1 := 0.0, 0.0
	var idle [2][2]float64
	for i := range c.Ends {
		d1 = max(d1, rel(i, evs[i][len(evs[i])-1].Time))
		if c.Failed && c.Idle[i] >= 0 {
			to := rel(i, c.FailureAt(i))
			idle[i] = [2]float64{to - c.Idle[i].Seconds(), to}
			d0, d1 = min(d0, idle[i][0]), max(d1, to)
		}
	}
	if s := c.Stopped; s != nil {
		d1 = max(d1, rel(s.Receiver, s.At))
	}
	if d1-d0 < 1e-3 {
		d1 = d0 + 1e-3
	}
	pad := (d1 - d0) * 0.03
	xs := scale{d0: d0 - pad, d1: d1 + pad, lo: tlLeft, hi: tlWidth - tlRight}

	out := &bothDrawing{Chart: v}
	y := px(4)
	for i, e := range c.Ends {
		x := func(mono uint64) px { return xs.at(rel(i, wall(i, mono))) }
		// The common origin on this end's CLOCK_MONOTONIC, so that hover
		// texts and the event table count from the same moment as the axis.
		ref := &evs[i][0]
		originMono := ref.Mono + uint64(c.OnClock(origin, 0, i).Sub(ref.Time))
		out.Origin[i] = originMono
		top := y
		v.Labels = append(v.Labels, label{X: 4, Y: top + 16, Text: endName(e), Class: "endname"})
		y += endHeader
		first := len(v.Marks)
		var rtx []*events.Event
		for k := range evs[i] {
			if evs[i][k].Kind == events.KindRetransmit {
				rtx = append(rtx, &evs[i][k])
			}
		}
		if len(rtx) > 0 {
			y += 16
			v.seqPanel(rtx, originMono, x, y)
			y += seqHeight + panelGap
		}
		y = v.eventLanes(evs[i], x, originMono, y, top+endHeader, resetNote(c, i))
		for k := first; k < len(v.Marks); k++ {
			v.Marks[k].Class += " lane-" + strconv.Itoa(i)
		}
		if idle[i][1] > idle[i][0] {
			x0, x1 := xs.at(idle[i][0]), xs.at(idle[i][1])
			what := "no data received for " + format.Duration(c.Idle[i])
			if c.IdleAtMost[i] {
				what = "no data received for at most " + format.Duration(c.Idle[i])
			}
			v.Shades = append(v.Shades, shade{X: x0, Y: top + endHeader - 4, W: x1 - x0, H: y - top - endHeader + 4,
				Label: what, LabelX: x0 + 6, LabelY: y - 3, Title: "the " + e.Role() + " had " + what + " when the connection failed"})
		}
		if s := c.Stopped; s != nil && s.Receiver == i {
			v.dataMark(c, xs.at(rel(i, s.At)), top+endHeader, y, i)
		}
		out.Events[i] = eventRows(evs[i], originMono)
		v.Segs = append(v.Segs, line{X1: 0, Y1: y + endGap/2, X2: tlWidth, Y2: y + endGap/2, Class: "endsep"})
		y += endGap
	}
	v.resetPath()
	v.timeAxis(xs, y-endGap/2)
	out.Omitted = omitted
	return out
}

// endName is how a lane is titled: the end's role, host, process and
// workload.
func endName(e *join.End) string {
	f := e.First()
	s := e.Role() + " · " + e.Rec.Host + " · " + format.Process(f.Comm, f.PID, f.OwnerKnown)
	if w := f.Workload.String(); w != "" {
		s += " · " + w
	}
	return s + " · cookie " + strconv.FormatUint(e.Cookie, 10)
}

// originWords say where a reset came from, on the mark of the end that
// received it.
var originWords = map[string]string{
	join.ResetPeer:      "RST received from the peer's kernel",
	join.ResetMiddlebox: "RST received from a middlebox: the peer sent none",
	join.ResetUnknown:   "RST received, origin unknown: the peer was not recorded then",
}

// resetNote names, in end i's lane, the reset the join found the origin
// of: the one received, and the one sent by the end that sent it.
func resetNote(c *join.Conn, i int) func(*events.Event) annotation {
	receiver, sender := -1, -1
	for k, e := range c.Ends {
		if c.ResetReceiver == e {
			receiver = k
		}
	}
	switch c.ResetOrigin {
	case join.ResetPeer:
		sender = 1 - receiver
	case join.ResetLocal:
		for k, e := range c.Ends {
			if sender < 0 && hasKind(e.Events, events.KindSendReset) {
				sender = k
			}
		}
	}
	class := "reset-origin reset-origin-" + c.ResetOrigin
	title := "reset origin " + c.ResetOrigin + ": " + c.ResetEvidence
	done := false
	return func(e *events.Event) annotation {
		if !done && c.ResetOrigin != "" {
			switch {
			case i == receiver && e.Kind == events.KindReceiveReset:
				done = true
				return annotation{Text: originWords[c.ResetOrigin], Class: class, Title: title}
			case i == sender && e.Kind == events.KindSendReset:
				done = true
				text := "RST sent by this kernel"
				if c.ResetOrigin == join.ResetLocal {
					text = "RST sent, never received"
				}
				return annotation{Text: text, Class: class, Title: title}
			}
		}
		if e.Kind == events.KindReceiveReset {
			// One end's own page says "from peer"; both ends' view names
			// the origin of the reset it explains, and no other.
			return annotation{Text: "RST received"}
		}
		return annotation{}
	}
}

func hasKind(evs []events.Event, k events.Kind) bool {
	for i := range evs {
		if evs[i].Kind == k {
			return true
		}
	}
	return false
}

// resetPath joins a reset sent by one end's kernel to the same reset
// received at the other.
func (v *timelineSVG) resetPath() {
	var ends []mark
	for _, m := range v.Marks {
		if strings.Contains(m.Class, "reset-origin-peer") {
			ends = append(ends, m)
		}
	}
	if len(ends) == 2 {
		v.Segs = append(v.Segs, line{X1: ends[0].X, Y1: ends[0].Y, X2: ends[1].X, Y2: ends[1].Y, Class: "rstpath"})
	}
}

// dataMark marks, in the receiver's lane from top to bottom, the event
// whose rcv_nxt tells whether the retransmitted data arrived.
func (v *timelineSVG) dataMark(c *join.Conn, x, top, bottom px, lane int) {
	s := c.Stopped
	text := "rcv_nxt at byte " + strconv.FormatUint(uint64(s.RcvNxt), 10) + ": cannot tell"
	if c.Reached != nil && *c.Reached {
		text = "rcv_nxt at byte " + strconv.FormatUint(uint64(s.RcvNxt), 10) + ": the data arrived"
	} else if c.Reached != nil {
		text = "rcv_nxt still at byte " + strconv.FormatUint(uint64(s.RcvNxt), 10) + ": the data stopped before this end"
	}
	v.Guides = append(v.Guides, line{X1: x, Y1: top, X2: x, Y2: bottom, Class: "guide datamark"})
	v.Marks = append(v.Marks, mark{Shape: "dot", Class: "datamark lane-" + strconv.Itoa(lane), X: x, Y: top + 4, Title: c.DataStopped})
	l := label{X: x + 6, Y: top + 8, Text: text, Class: "datamark"}
	if x > tlWidth/2 {
		l.X, l.Anchor = x-6, "end"
	}
	v.Labels = append(v.Labels, l)
}
