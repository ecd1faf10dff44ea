package join

import (
	"fmt"
	"strings"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

// Who reset a connection, as the join can tell from both ends.
const (
	ResetPeer      = "peer"      // the other end's kernel sent it
	ResetMiddlebox = "middlebox" // one end received a reset the other, recording at the time, never sent
	ResetLocal     = "local"     // an end sent a reset the other end never received
	ResetUnknown   = "unknown"   // the other end's recording does not cover the time
)

// Conn is one connection with both of its ends, client first when known.
type Conn struct {
	Ends [2]*End
	// Failed is set when either end saw a reset, an error or a diagnosis.
	Failed bool

	ResetOrigin   string // one of the Reset* constants; "" when no reset
	ResetReceiver *End   // the end that received the reset; nil for local
	ResetEvidence string
	// ResetReason is the sending kernel's enum sk_rst_reason name, for a
	// peer's or a local reset; "" when the kernel gave none (before 6.10).
	ResetReason string

	// DataStopped says where retransmitted data stopped; "" when neither
	// end retransmitted.
	DataStopped string
	// Reached is set when the retransmitted data advanced the other end's
	// receive sequence, clear when the other end shows it did not, and
	// nil when the other end's events cannot tell.
	Reached *bool
	// Stopped is the other end's event that DataStopped cites; nil when
	// neither end retransmitted.
	Stopped *DataMark

	Idle [2]time.Duration // per end: no data received for this long at the failure; -1 unknown
	// IdleAtMost is set for an end whose idle time is only an upper
	// bound: no event of its socket after the failure confirms that no
	// data came between its last event and the failure.
	IdleAtMost [2]bool
	Drops      [2]LocalDrops // per end: what its own host dropped of its socket's packets
	// DroppedAtHost is set for the end whose own host dropped the other
	// end's data on its way in: that end's diagnosis is local-drop, though
	// its socket saw nothing fail.
	DroppedAtHost [2]bool
	Diagnosis     string // one line that reconciles both ends

	offset  time.Duration // Ends[1]'s clock minus Ends[0]'s
	within  time.Duration // ± on offset
	sent    *events.Event // the reset the other end sent, for a peer's reset
	failure [2]time.Time  // the failure's time on each end's clock
}

// DataMark is the receiver's event that tells how far the sender's
// retransmitted data got.
type DataMark struct {
	Sender, Receiver int       // indexes into Ends
	From             uint32    // the first retransmitted byte, from the sender's ISN
	RcvNxt           uint32    // the receiver's rcv_nxt at At, bytes from the same ISN
	At               time.Time // on the receiver's clock
}

// OnClock converts time t of end i's clock to end j's by the estimated
// offset.
func (c *Conn) OnClock(t time.Time, i, j int) time.Time { return c.on(t, i, j) }

// FailureAt is the failure's time on end i's clock; zero when the
// connection did not fail.
func (c *Conn) FailureAt(i int) time.Time { return c.failure[i] }

func newConn(a, b *End) *Conn {
	if !a.Client && b.Client {
		a, b = b, a
	}
	return &Conn{Ends: [2]*End{a, b}}
}

// on converts time t of end i's clock to end j's clock.
func (c *Conn) on(t time.Time, i, j int) time.Time {
	switch {
	case i == j:
		return t
	case i == 0:
		return t.Add(c.offset)
	default:
		return t.Add(-c.offset)
	}
}

func (c *Conn) analyse() {
	var first [2]*events.Event
	for i, e := range c.Ends {
		for k := range e.Events {
			ev := &e.Events[k]
			if failure(ev) {
				first[i] = ev
				break
			}
		}
		if first[i] != nil || len(e.Diagnoses) > 0 {
			c.Failed = true
		}
	}
	if !c.Failed {
		return
	}
	// The failure's moment: the earliest failure seen at either end.
	var at time.Time
	from := -1
	for i := range 2 {
		if first[i] != nil {
			t := c.on(first[i].Time, i, 0)
			if from < 0 || t.Before(at) {
				at, from = t, i
			}
		}
	}
	if from < 0 {
		at = c.on(c.Ends[0].Diagnoses[0].Time, 0, 0)
	}
	c.failure = [2]time.Time{at, c.on(at, 0, 1)}
	for i := range 2 {
		c.Idle[i], c.IdleAtMost[i] = c.idle(i)
		c.Drops[i] = dropsOf(c.Ends[i])
	}
	c.resetOrigin()
	c.dataStopped()
	c.Diagnosis = c.reconcile()
}

func failure(ev *events.Event) bool {
	switch ev.Kind {
	case events.KindReceiveReset, events.KindSendReset, events.KindErrorReport, events.KindSendError:
		return true
	}
	return false
}

// idle is how long end i had received no data at the failure. Successful
// receives leave no event, so the last event before the failure may be
// long before the last receive: its since_recv plus the time since is
// exact only when that event is the failure itself, an upper bound
// otherwise. The first event after the failure is exact when no data came
// in between (its since_recv reaches back past the failure). Unknown (-1)
// when the end's recording did not cover the failure; atMost when only an
// upper bound is known.
func (c *Conn) idle(i int) (d time.Duration, atMost bool) {
	e := c.Ends[i]
	at := c.failure[i]
	if !c.covers(i, at) {
		return -1, false // its recording says nothing of that moment
	}
	var last *events.Event
	for k := range e.Events {
		ev := &e.Events[k]
		if !ev.Time.After(at) {
			last = ev
			continue
		}
		if (last == nil || !last.Time.Equal(at)) && ev.SinceRecv >= ev.Time.Sub(at) {
			return ev.SinceRecv - ev.Time.Sub(at), false
		}
		break
	}
	if last == nil || last.SinceRecv < 0 {
		return -1, false
	}
	return last.SinceRecv + at.Sub(last.Time), !last.Time.Equal(at)
}

// covers reports whether end i's recording was running at time t of its
// own clock.
func (c *Conn) covers(i int, t time.Time) bool {
	r := c.Ends[i].Rec
	return !t.Before(r.Start) && !t.After(r.End)
}

func (c *Conn) name(i int) string {
	e := c.Ends[i]
	return e.Role() + " on " + e.Rec.Host
}

// lastState says where end i's socket was at its last event.
func (c *Conn) lastState(i int) string {
	e := c.Ends[i]
	last := e.Last()
	s := fmt.Sprintf("last event %s at %s, state %s", last.Kind, Stamp(last.Time), events.StateName(last.State))
	if last.State != events.StateClose {
		s += ", still open when its recording ended at " + Stamp(e.Rec.End)
	}
	return s
}

// stateAt says where end i's socket was at time t of its own clock, and
// what became of it afterwards.
func (c *Conn) stateAt(i int, t time.Time) string {
	e := c.Ends[i]
	before := e.First()
	var after *events.Event
	for k := range e.Events {
		ev := &e.Events[k]
		if ev.Time.After(t) {
			after = ev
			break
		}
		before = ev
	}
	s := fmt.Sprintf("its socket was %s then (last event before: %s at %s)", events.StateName(before.State), before.Kind, Stamp(before.Time))
	switch {
	case after == nil && before.State != events.StateClose:
		s += ", and still open when its recording ended at " + Stamp(e.Rec.End)
	case after != nil:
		s += fmt.Sprintf(", next event %s at %s", after.Kind, Stamp(after.Time))
		if after.Kind == events.KindStateChange {
			s += " to " + events.StateName(after.State)
		}
	}
	return s
}

func find(e *End, k events.Kind) *events.Event {
	for i := range e.Events {
		if e.Events[i].Kind == k {
			return &e.Events[i]
		}
	}
	return nil
}

// reconcile turns both ends' views into one line.
func (c *Conn) reconcile() string {
	switch c.ResetOrigin {
	case ResetMiddlebox:
		i := c.index(c.ResetReceiver)
		recv := find(c.Ends[i], events.KindReceiveReset)
		s := fmt.Sprintf("a middlebox between the ends forgot the flow%s and reset the %s; the %s never sent that reset",
			c.idleText(i), c.Ends[i].Role(), c.Ends[1-i].Role())
		other := find(c.Ends[1-i], events.KindReceiveReset)
		if other == nil {
			return s + fmt.Sprintf(" and never received one: %s", c.stateAt(1-i, c.on(recv.Time, i, 1-i)))
		}
		s += ": " + c.stateAt(1-i, c.on(recv.Time, i, 1-i))
		at := c.on(other.Time, 1-i, i)
		when := format.Duration(at.Sub(recv.Time)) + " after"
		if at.Before(recv.Time) {
			when = format.Duration(recv.Time.Sub(at)) + " before"
		}
		s += fmt.Sprintf("; the %s received a reset of its own at %s, in %s, %s the %s's", c.Ends[1-i].Role(), Stamp(other.Time),
			events.StateName(other.State), when, c.Ends[i].Role())
		if sent := find(c.Ends[i], events.KindSendReset); sent != nil {
			return s + fmt.Sprintf(", and the %s's kernel sent one at %s (%s)", c.Ends[i].Role(), Stamp(sent.Time), reasonText(sent.ResetReason))
		}
		return s + fmt.Sprintf(", which the %s's socket did not send: %s; it came from the middlebox again, or from the %s's kernel answering for a socket already gone",
			c.Ends[i].Role(), c.stateAt(i, at), c.Ends[i].Role())
	case ResetPeer:
		i := c.index(c.ResetReceiver)
		sent := c.sent
		return fmt.Sprintf("the %s's kernel reset the connection (%s) and the %s received that reset: look at the %s application (an abortive close, SO_LINGER 0, unread data at close), not at the network",
			c.Ends[1-i].Role(), reasonText(sent.ResetReason), c.Ends[i].Role(), c.Ends[1-i].Role())
	case ResetLocal:
		return "an end reset the connection and the other end never received the reset: " + c.ResetEvidence
	}
	if c.Reached != nil {
		i := c.retransmitter()
		if *c.Reached {
			if d := c.Drops[1-i]; d.Out > 0 {
				return fmt.Sprintf("the retransmitted data reached the %s's TCP, and the %s's own host dropped %s on their way out (%s), so its acknowledgements never came back: look at the %s host's firewall or send path, not at the network",
					c.Ends[1-i].Role(), c.Ends[1-i].Role(), plural(d.Out, "packet"), d.Where, c.Ends[1-i].Role())
			}
			return "the retransmitted data reached the other end's TCP, whose acknowledgements never came back: look at the return path or at the receiving end"
		}
		if d := c.Drops[1-i]; d.In > 0 {
			return fmt.Sprintf("the %s's own host dropped the %s's segments (%s), so the retransmitted data never reached the %s's TCP: look at the %s host's firewall or receive path, not at the network; the %s's socket saw nothing wrong",
				c.Ends[1-i].Role(), c.Ends[i].Role(), d.Where, c.Ends[1-i].Role(), c.Ends[1-i].Role(), c.Ends[1-i].Role())
		}
		return "the retransmitted data never reached the other end's TCP and no host recorded dropping it: a loss on the path, or a drop before the packet met the receiving socket; the receiving end saw nothing wrong"
	}
	var parts []string
	for i, e := range c.Ends {
		if len(e.Diagnoses) > 0 {
			parts = append(parts, e.Role()+": "+e.Diagnoses[0].Rule)
		} else {
			parts = append(parts, e.Role()+": "+c.lastState(i))
		}
	}
	if c.ResetOrigin == ResetUnknown {
		parts = append(parts, "who sent the reset is unknown: "+c.ResetEvidence)
	}
	return strings.Join(parts, "; ")
}

func (c *Conn) index(e *End) int {
	if c.Ends[0] == e {
		return 0
	}
	return 1
}

func (c *Conn) idleText(i int) string {
	switch {
	case c.Idle[i] < 0:
		return ""
	case c.IdleAtMost[i]:
		return " after at most " + format.Duration(c.Idle[i]) + " of idle"
	}
	return " after " + format.Duration(c.Idle[i]) + " of idle"
}

// Stamp is a time as the both-ends output shows it: its host's clock, to the
// microsecond.
func Stamp(t time.Time) string { return t.UTC().Format("15:04:05.000000") }

// Rule is end i's diagnosis: the first its recording concluded, or
// local-drop when the join found its own host dropped the data that
// stopped; "" when neither.
func (c *Conn) Rule(i int) string {
	if e := c.Ends[i]; len(e.Diagnoses) > 0 {
		return e.Diagnoses[0].Rule
	}
	if c.DroppedAtHost[i] {
		return diagnose.RuleLocalDrop
	}
	return ""
}
