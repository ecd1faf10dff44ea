package join

import (
	"fmt"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
)

// LocalDrops is what an end's own host dropped of its socket's packets,
// TCP's own bookkeeping aside: a firewall rule, a qdisc, a missing route.
type LocalDrops struct {
	In, Out int
	Where   string // the first drop's reason, kernel function and device
}

func dropsOf(e *End) LocalDrops {
	var d LocalDrops
	for k := range e.Events {
		ev := &e.Events[k]
		if ev.Kind != events.KindDrop || diagnose.ProtocolDrop(ev) {
			continue
		}
		if ev.DropDir == events.DropIn {
			d.In++
		} else {
			d.Out++
		}
		if d.Where == "" {
			d.Where = ev.DropReason
			if ev.DropLocation != "" {
				d.Where += " in " + ev.DropLocation
			}
			if ev.DropDev != "" {
				d.Where += " on " + ev.DropDev
			}
		}
	}
	return d
}

// dataStopped compares the first segment an end retransmitted with the
// other end's receive sequence after it. Offsets are bytes from the ISN,
// which are the same number at both ends.
func (c *Conn) dataStopped() {
	for i := range 2 {
		e, peer := c.Ends[i], c.Ends[1-i]
		var firstRe, lastRe *events.Event
		n := 0
		for k := range e.Events {
			if ev := &e.Events[k]; ev.Kind == events.KindRetransmit {
				if firstRe == nil {
					firstRe = ev
				}
				lastRe = ev
				n++
			}
		}
		if firstRe == nil {
			continue
		}
		off := firstRe.Seq - e.SndISN
		var after *events.Event // the peer's last event after the last retransmit
		for k := range peer.Events {
			ev := &peer.Events[k]
			// An event the kernel filled no TCP fields for (rcv_nxt 0) says
			// nothing of what arrived.
			if ev.Protocol != events.ProtoTCP || ev.RcvNxt == 0 {
				continue
			}
			got := ev.RcvNxt - peer.RcvISN
			if int32(got-off) > 0 {
				c.Stopped = &DataMark{Sender: i, Receiver: 1 - i, From: off, RcvNxt: got, At: ev.Time}
				yes := true
				c.Reached = &yes
				c.DataStopped = fmt.Sprintf("the %s retransmitted %d times from byte %d; the %s's kernel received it: its rcv_nxt was at byte %d at %s. The data crossed the path; the %s never saw it acknowledged",
					c.name(i), n, off, c.name(1-i), got, Stamp(ev.Time), c.name(i))
				return
			}
			if !c.on(ev.Time, 1-i, i).Before(lastRe.Time) {
				after = ev
			}
		}
		if after != nil {
			c.Stopped = &DataMark{Sender: i, Receiver: 1 - i, From: off, RcvNxt: after.RcvNxt - peer.RcvISN, At: after.Time}
			no := false
			c.Reached = &no
			c.DataStopped = fmt.Sprintf("the %s retransmitted %d times from byte %d (%s to %s); the %s's kernel never received it: its rcv_nxt was still at byte %d at %s, after the last retransmit. ",
				c.name(i), n, off, Stamp(firstRe.Time), Stamp(lastRe.Time), c.name(1-i), after.RcvNxt-peer.RcvISN, Stamp(after.Time))
			if d := c.Drops[1-i]; d.In > 0 {
				c.DroppedAtHost[1-i] = true
				c.DataStopped += fmt.Sprintf("The %s's host dropped %s on their way in to its socket (%s): the data stopped at the %s's host, before its TCP",
					c.name(1-i), plural(d.In, "segment"), d.Where, c.Ends[1-i].Role())
			} else {
				c.DataStopped += fmt.Sprintf("The data stopped before the %s's TCP, and its host recorded no drop of it: lost on the path, or dropped before the packet met its socket",
					c.name(1-i))
			}
			return
		}
		last := peer.Last()
		c.Stopped = &DataMark{Sender: i, Receiver: 1 - i, From: off, RcvNxt: last.RcvNxt - peer.RcvISN, At: last.Time}
		c.DataStopped = fmt.Sprintf("the %s retransmitted %d times from byte %d; the %s has no event after the retransmits, so its recording cannot tell whether they arrived (its rcv_nxt was at byte %d at %s)",
			c.name(i), n, off, c.name(1-i), last.RcvNxt-peer.RcvISN, Stamp(last.Time))
		return
	}
}

// retransmitter is the end whose retransmits DataStopped speaks of.
func (c *Conn) retransmitter() int {
	if find(c.Ends[0], events.KindRetransmit) != nil {
		return 0
	}
	return 1
}
