package htmlreport

import (
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/session"
)

// maxConnEvents bounds what one socket keeps for its drawing: a send
// storm on one socket would otherwise hold every event in memory. Past it,
// only the events that end a connection are kept (error reports, resets,
// state changes), and the rest are counted.
const maxConnEvents = 400

// overCap reports whether an event of kind k is left out of a drawing
// that already holds kept events.
func overCap(kept int, k events.Kind) bool {
	return kept >= maxConnEvents && (k == events.KindSendError || k == events.KindRetransmit)
}

// Collector is the page's sink: it keeps, per socket, the events a
// timeline draws, and every failure's time and errno for the charts. It
// runs on the same replay as the report's own sink.
//
// The page draws the first few failed sockets in the order of their
// diagnosis's rule, then of their first event. So once a socket is
// diagnosed, the collector keeps its events only while it is among the
// earliest `draw` sockets of its rule: a recording of a million events
// costs the memory of the sockets drawn, not of every socket.
type Collector struct {
	conns map[uint64]*connEvents
	added int
	ticks []tick
	draw  int
	kept  map[string][]*connEvents // per rule, the sockets still kept
}

type connEvents struct {
	events   []events.Event
	omitted  int
	failed   bool
	first    uint64 // mono of its first event
	closedAt uint64 // mono of its CLOSE; 0 while open
	ruled    bool   // diagnosed: kept or dropped for good
	dropped  bool   // will not be drawn: its events are not kept
}

// A socket that closed without failing is forgotten once it has been
// closed this long: its error report, when there is one, follows the
// CLOSE at once (tcp_done sets the state, then reports the error).
const forgetAfter = uint64(time.Second)

// sweepEvery is how many new sockets pass between sweeps.
const sweepEvery = 4096

// tick is one event the time charts count.
type tick struct {
	mono  uint64
	errno int32
	kind  events.Kind
}

// NewCollector returns an empty collector for a page that draws up to
// draw failed sockets (0: DefaultConns).
func NewCollector(draw int) *Collector {
	if draw <= 0 {
		draw = DefaultConns
	}
	return &Collector{conns: map[uint64]*connEvents{}, draw: draw, kept: map[string][]*connEvents{}}
}

// Begin does nothing: the report's sink keeps the description.
func (c *Collector) Begin(*session.Description) error { return nil }

// Event keeps one event.
func (c *Collector) Event(e *events.Event) error {
	switch e.Kind {
	case events.KindSendError, events.KindRetransmit, events.KindErrorReport, events.KindReceiveReset, events.KindSendReset:
		c.ticks = append(c.ticks, tick{mono: e.Mono, errno: e.Errno, kind: e.Kind})
	}
	if e.Cookie == 0 {
		return nil
	}
	ce := c.conns[e.Cookie]
	if ce == nil {
		ce = &connEvents{first: e.Mono}
		c.conns[e.Cookie] = ce
		if c.added++; c.added%sweepEvery == 0 {
			c.sweep(e.Mono)
		}
	}
	failing := e.Errno != 0 || e.Kind == events.KindReceiveReset || e.Kind == events.KindSendReset
	ce.failed = ce.failed || failing
	if ce.dropped {
		return nil
	}
	if overCap(len(ce.events), e.Kind) {
		ce.omitted++
		return nil
	}
	ev := *e
	// The owner is in the report's connection table; one copy of the
	// name per event would only cost memory.
	ev.Comm = ""
	ce.events = append(ce.events, ev)
	if e.Kind == events.KindStateChange && e.State == events.StateClose {
		ce.closedAt = e.Mono
	}
	return nil
}

// sweep forgets the sockets that closed without failing: they will not be
// drawn, and a recording of many short connections would otherwise keep
// all of them.
func (c *Collector) sweep(now uint64) {
	for cookie, ce := range c.conns {
		if !ce.failed && ce.closedAt != 0 && now > ce.closedAt+forgetAfter {
			delete(c.conns, cookie)
		}
	}
}

var _ pipeline.DiagnosisSink = (*Collector)(nil)

// Diagnosis decides whether a socket's events are worth keeping: only
// the earliest sockets of each rule can be drawn.
func (c *Collector) Diagnosis(d *diagnose.Diagnosis) error {
	ce := c.conns[d.Cookie]
	if d.Cookie == 0 || ce == nil || ce.ruled {
		return nil
	}
	ce.ruled = true
	kept := c.kept[d.Rule]
	if len(kept) < c.draw {
		c.kept[d.Rule] = append(kept, ce)
		return nil
	}
	latest := 0
	for i, k := range kept {
		if k.first > kept[latest].first {
			latest = i
		}
	}
	if ce.first >= kept[latest].first {
		ce.drop()
		return nil
	}
	kept[latest].drop()
	kept[latest] = ce
	return nil
}

func (ce *connEvents) drop() {
	ce.events, ce.dropped = nil, true
}

// End does nothing.
func (c *Collector) End(*session.End) error { return nil }
