package diagnose

import (
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

func (c *chain) drop(at time.Duration, reason string, dir events.DropDir, seq uint32) *chain {
	return c.add(at, events.Event{Kind: events.KindDrop, DropReason: reason, DropLocation: "nf_hook_slow",
		DropDir: dir, Seq: seq, Segs: 1, Bytes: 152})
}

// The host's own output chain drops the data after the handshake: no
// retransmit at all (the data never counted as sent), probes that are
// dropped too, then ETIMEDOUT.
func TestLocalDropNoRetransmit(t *testing.T) {
	c := newChain(1).established()
	for i := range 5 {
		c.drop(time.Duration(100+400*i)*ms_, "NETFILTER_DROP", events.DropOut, 7)
	}
	c.add(3*time.Second, events.Event{Kind: events.KindErrorReport, Errno: events.ETIMEDOUT, State: events.StateClose})
	c.add(3*time.Second+ms_, events.Event{Kind: events.KindSendError, Errno: events.ETIMEDOUT, Layer: events.LayerBoth, State: events.StateClose})
	d := check(t, c.evs, RuleLocalDrop)[0]
	if d.Confidence != High || d.Evidence.Drops != 5 || d.Evidence.DropReason != "NETFILTER_DROP" || d.Evidence.DropDir != "out" {
		t.Errorf("%+v", d)
	}
	if !strings.Contains(d.NextStep, "nft list ruleset") || !strings.Contains(d.Evidence.Text, "NETFILTER_DROP in nf_hook_slow") {
		t.Errorf("%s / %s", d.Evidence.Text, d.NextStep)
	}
}

// The stuck segment retransmitted and dropped by this host each time.
func TestLocalDropOfStuckSegment(t *testing.T) {
	c := newChain(1).established()
	at := 500 * ms_
	rto := 200 * ms_
	for i := range 4 {
		c.drop(at-ms_, "QDISC_DROP", events.DropOut, 7)
		c.add(at, events.Event{Kind: events.KindRetransmit, Seq: 7, Bytes: 100, MSS: 1448, Backoff: uint8(i), RTO: rto, SinceSend: rto, SinceRecv: at})
		at += 2 * rto
		rto *= 2
	}
	c.add(at, events.Event{Kind: events.KindErrorReport, Errno: events.ETIMEDOUT, State: events.StateClose})
	d := check(t, c.evs, RuleLocalDrop)[0]
	if d.Confidence != High || !strings.Contains(d.NextStep, "tc -s qdisc") {
		t.Errorf("%+v", d)
	}
}

// A route that disappears: EHOSTUNREACH with no retransmit chain is a
// refusal from the path unless this host dropped the packets itself.
func TestLocalDropNoRoute(t *testing.T) {
	c := newChain(1).established()
	c.drop(100*ms_, "IP_OUTNOROUTES", events.DropOut, 7)
	c.add(2*time.Second, events.Event{Kind: events.KindErrorReport, Errno: events.EHOSTUNREACH, State: events.StateClose})
	d := check(t, c.evs, RuleLocalDrop)[0]
	if !strings.Contains(d.NextStep, "ip route get 198.18.1.2") {
		t.Errorf("%s", d.NextStep)
	}
}

// A black hole on the path is never a local drop, even on a socket that
// lost a packet to a local queue long before the stuck segment.
func TestBlackHoleIsNotLocalDrop(t *testing.T) {
	c := newChain(1).established()
	c.drop(100*ms_, "QDISC_DROP", events.DropOut, 3)
	end := c.retransmits(10*time.Second, 4, 7, 100, 1448, func(at time.Duration) time.Duration { return at })
	c.add(end, events.Event{Kind: events.KindErrorReport, Errno: events.ETIMEDOUT, State: events.StateClose, SinceRecv: end, SinceSend: end})
	check(t, c.evs, RuleBlackHole)
}

// Drops on a connection that did not fail are no diagnosis.
func TestLocalDropWithoutFailure(t *testing.T) {
	c := newChain(1).established()
	for i := range 3 {
		c.drop(time.Duration(100+i)*ms_, "QDISC_DROP", events.DropOut, uint32(i))
	}
	check(t, c.evs, "")
}

// A trace that ends while this host still drops a connection's probes.
func TestLocalDropStillDropping(t *testing.T) {
	c := newChain(1).established()
	for i := range 4 {
		c.drop(time.Duration(100+600*i)*ms_, "NETFILTER_DROP", events.DropOut, 7)
	}
	d := check(t, c.evs, RuleLocalDrop)[0]
	if d.Confidence != Medium || d.Errno != 0 {
		t.Errorf("%+v", d)
	}
}

// TCP discarding a duplicate of the peer's data on the way in is protocol
// work, not a local drop: a black hole stays a black hole.
func TestTCPOwnDiscardIsNotLocalDrop(t *testing.T) {
	c := newChain(1).established()
	c.drop(900*ms_, "TCP_OLD_DATA", events.DropIn, 5)
	end := c.retransmits(ms_*300, 4, 7, 100, 1448, func(at time.Duration) time.Duration { return at })
	c.add(end, events.Event{Kind: events.KindErrorReport, Errno: events.ETIMEDOUT, State: events.StateClose, SinceRecv: end, SinceSend: end})
	check(t, c.evs, RuleBlackHole)
}
