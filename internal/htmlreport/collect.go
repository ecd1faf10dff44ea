package htmlreport

import (
	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
)

// maxConnEvents bounds what one socket keeps for its drawing: a send
// storm on one socket would otherwise hold every event in memory. Past it,
// only the events that end a connection are kept (error reports, resets,
// state changes), and the rest are counted.
const maxConnEvents = 400

// Collector is the page's sink: it keeps, per socket, the events a
// timeline draws, and every failure's time and errno for the charts. It
// runs on the same replay as the report's own sink.
type Collector struct {
	conns map[uint64]*connEvents
	ticks []tick
}

type connEvents struct {
	events  []events.Event
	omitted int
	failed  bool
}

// tick is one event the time charts count.
type tick struct {
	mono  uint64
	errno int32
	kind  events.Kind
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	return &Collector{conns: map[uint64]*connEvents{}}
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
		ce = &connEvents{}
		c.conns[e.Cookie] = ce
	}
	failing := e.Errno != 0 || e.Kind == events.KindReceiveReset || e.Kind == events.KindSendReset
	ce.failed = ce.failed || failing
	if len(ce.events) >= maxConnEvents && (e.Kind == events.KindSendError || e.Kind == events.KindRetransmit) {
		ce.omitted++
		return nil
	}
	ev := *e
	// The owner is in the report's connection table; one copy of the
	// name per event would only cost memory.
	ev.Comm = ""
	ce.events = append(ce.events, ev)
	// A connection that closed without failing will not be drawn.
	if e.Kind == events.KindStateChange && e.State == events.StateClose && !ce.failed {
		delete(c.conns, e.Cookie)
	}
	return nil
}

// Diagnosis does nothing: the report's sink keeps them in order.
func (c *Collector) Diagnosis(*diagnose.Diagnosis) error { return nil }

// End does nothing.
func (c *Collector) End(*session.End) error { return nil }
