package join

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

var t0 = time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)

func rec(path string, from, to time.Duration) *Recording {
	return &Recording{Path: path, Host: path, Start: t0.Add(from), End: t0.Add(to), Footer: true}
}

// handshake adds one end to r: established at est, having sent SYN at syn
// (a client) or not (a server).
func handshake(r *Recording, cookie uint64, snd, rcv uint32, syn, est time.Duration, client bool) *End {
	e := &End{Rec: r, Cookie: cookie, SndISN: snd, RcvISN: rcv, Client: client, Established: t0.Add(est)}
	if client {
		e.SynSent = t0.Add(syn)
	}
	e.Events = []events.Event{{Kind: events.KindStateChange, State: events.StateEstablished, Time: e.Established,
		Protocol: events.ProtoTCP, Cookie: cookie, SndISN: snd, RcvISN: rcv, HasISN: true, SinceRecv: -1,
		SndUna: snd + 1, RcvNxt: rcv + 1}}
	r.Ends = append(r.Ends, e)
	return e
}

func TestJoinBySequenceNumbers(t *testing.T) {
	a, b := rec("a", 0, 10*time.Second), rec("b", 0, 10*time.Second)
	// b's clock is 2 s ahead; one-way delays of 1 ms, round trips of 2
	// and 4 ms.
	handshake(a, 1, 100, 200, time.Second, time.Second+2*time.Millisecond, true)
	handshake(b, 9, 200, 100, 0, 3*time.Second+3*time.Millisecond, false)
	handshake(a, 2, 300, 400, 2*time.Second, 2*time.Second+4*time.Millisecond, true)
	handshake(b, 8, 400, 300, 0, 4*time.Second+5*time.Millisecond, false)
	handshake(a, 3, 500, 600, 3*time.Second, 3*time.Second+2*time.Millisecond, true)
	r := Join([]*Recording{a, b})
	if len(r.Joined) != 2 || len(r.OneEnd) != 1 || r.OneEnd[0].Cookie != 3 {
		t.Fatalf("joined %d, one end %v: want 2 joined and cookie 3 alone", len(r.Joined), r.OneEnd)
	}
	for _, c := range r.Joined {
		if !c.Ends[0].Client || c.Ends[0].SndISN != c.Ends[1].RcvISN || c.Ends[0].RcvISN != c.Ends[1].SndISN {
			t.Errorf("joined %d with %d: ISNs do not cross", c.Ends[0].Cookie, c.Ends[1].Cookie)
		}
	}
	if len(r.Offsets) != 1 {
		t.Fatalf("offsets %+v", r.Offsets)
	}
	// Bounds [2s-1ms, 2s+1ms] and [2s-3ms, 2s+1ms] meet in [2s-1ms, 2s+1ms].
	o := r.Offsets[0]
	if o.A != a || o.B != b || o.Estimate != 2*time.Second || o.Within != time.Millisecond || o.Inconsistent {
		t.Errorf("offset %+v, want b 2s ahead of a ± 1ms", o)
	}
}

func TestJoinRefusesTwoCandidates(t *testing.T) {
	a, b, c := rec("a", 0, 10*time.Second), rec("b", 0, 10*time.Second), rec("c", 0, 10*time.Second)
	handshake(a, 1, 100, 200, time.Second, time.Second+time.Millisecond, true)
	handshake(b, 2, 200, 100, 0, time.Second+2*time.Millisecond, false)
	handshake(c, 3, 200, 100, 0, time.Second+2*time.Millisecond, false)
	r := Join([]*Recording{a, b, c})
	if len(r.Joined) != 0 || len(r.Ambiguous) != 1 || len(r.Ambiguous[0].Candidates) != 2 {
		t.Fatalf("joined %d, ambiguous %+v: two candidates must be no join", len(r.Joined), r.Ambiguous)
	}
}

func TestJoinOnlyWithinOverlap(t *testing.T) {
	a, b := rec("a", 0, 5*time.Second), rec("b", 6*time.Second, 10*time.Second)
	handshake(a, 1, 100, 200, time.Second, time.Second+time.Millisecond, true)
	handshake(b, 2, 200, 100, 0, 7*time.Second, false)
	r := Join([]*Recording{a, b})
	if len(r.Joined) != 0 || len(r.OneEnd) != 0 || len(r.Overlaps) != 1 || r.Overlaps[0].OK {
		t.Fatalf("recordings apart in time: joined %d, one end %d, overlaps %+v", len(r.Joined), len(r.OneEnd), r.Overlaps)
	}
}

// A reset one end received, while the other end's recording ran and its
// socket sent none, came from the path; outside that recording, nobody
// can tell.
func TestResetOrigin(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bEnd    time.Duration
		bSent   bool
		want    string
		receive bool
	}{
		{"peer", 10 * time.Second, true, ResetPeer, true},
		{"middlebox", 10 * time.Second, false, ResetMiddlebox, true},
		{"unknown", 4 * time.Second, false, ResetUnknown, true},
		{"local", 10 * time.Second, true, ResetLocal, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := rec("a", 0, 10*time.Second), rec("b", 0, tc.bEnd)
			ca := handshake(a, 1, 100, 200, time.Second, time.Second+time.Millisecond, true)
			cb := handshake(b, 2, 200, 100, 0, time.Second+2*time.Millisecond, false)
			cb.Events[0].SinceRecv = 0
			if tc.receive {
				ca.Events = append(ca.Events, events.Event{Kind: events.KindReceiveReset, Time: t0.Add(5 * time.Second), SinceRecv: time.Second})
			}
			if tc.bSent {
				cb.Events = append(cb.Events, events.Event{Kind: events.KindSendReset, Time: t0.Add(5 * time.Second), ResetReason: 12})
			}
			r := Join([]*Recording{a, b})
			if len(r.Joined) != 1 {
				t.Fatalf("joined %d", len(r.Joined))
			}
			c := r.Joined[0]
			if c.ResetOrigin != tc.want || !c.Failed {
				t.Errorf("reset origin %q (failed %v), want %q: %s", c.ResetOrigin, c.Failed, tc.want, c.ResetEvidence)
			}
			// b's idle time at the failure is known only when its
			// recording ran then.
			if (c.Idle[1] >= 0) != (tc.bEnd > 5*time.Second) {
				t.Errorf("b's idle %v with its recording ending at %v, the failure at 5s", c.Idle[1], tc.bEnd)
			}
		})
	}
}

// Retransmitted bytes are compared with the other end's rcv_nxt, both as
// offsets from the ISN.
func TestDataStopped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rcvNxt uint32 // the server's, as an offset from its rcv ISN
		want   bool
	}{{"reached", 1001, true}, {"stopped", 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := rec("a", 0, 10*time.Second), rec("b", 0, 10*time.Second)
			// ISNs near the wrap, so offsets must be taken modulo 2^32.
			ca := handshake(a, 1, 0xffffff00, 0xfffffff0, time.Second, time.Second+time.Millisecond, true)
			cb := handshake(b, 2, 0xfffffff0, 0xffffff00, 0, time.Second+2*time.Millisecond, false)
			for i := range 3 {
				ca.Events = append(ca.Events, events.Event{Kind: events.KindRetransmit, Seq: 0xffffff00 + 1,
					Time: t0.Add(2*time.Second + time.Duration(i)*time.Second)})
			}
			ca.Events = append(ca.Events, events.Event{Kind: events.KindErrorReport, Errno: 110, Time: t0.Add(6 * time.Second)})
			// A send error without TCP fields (rcv_nxt 0) tells nothing.
			cb.Events = append(cb.Events, events.Event{Kind: events.KindSendError, Time: t0.Add(7 * time.Second), Protocol: events.ProtoTCP},
				events.Event{Kind: events.KindStateChange, State: 4, Time: t0.Add(8 * time.Second), Protocol: events.ProtoTCP,
					RcvNxt: 0xffffff00 + tc.rcvNxt})
			c := Join([]*Recording{a, b}).Joined[0]
			if c.Reached == nil || *c.Reached != tc.want {
				t.Errorf("reached %v, want %v: %s", c.Reached, tc.want, c.DataStopped)
			}
		})
	}
}

// Retransmitted data the receiving host dropped on its way in stopped at
// that host, not on the path; TCP's own bookkeeping drops are no evidence.
func TestDataStoppedAtReceiversHost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		want   int
	}{{"firewall", "NETFILTER_DROP", 3}, {"old data", "TCP_OLD_DATA", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := rec("a", 0, 10*time.Second), rec("b", 0, 10*time.Second)
			ca := handshake(a, 1, 1000, 5000, time.Second, time.Second+time.Millisecond, true)
			cb := handshake(b, 2, 5000, 1000, 0, time.Second+2*time.Millisecond, false)
			for i := range 3 {
				at := t0.Add(2*time.Second + time.Duration(i)*time.Second)
				ca.Events = append(ca.Events, events.Event{Kind: events.KindRetransmit, Seq: 1001, Time: at})
				cb.Events = append(cb.Events, events.Event{Kind: events.KindDrop, DropDir: events.DropIn, DropReason: tc.reason,
					DropLocation: "nft_do_chain", Protocol: events.ProtoTCP, Seq: 1001, RcvNxt: 1001, Time: at.Add(time.Millisecond)})
			}
			ca.Events = append(ca.Events, events.Event{Kind: events.KindErrorReport, Errno: 110, Time: t0.Add(6 * time.Second)})
			cb.Events = append(cb.Events, events.Event{Kind: events.KindStateChange, State: 4, Time: t0.Add(8 * time.Second), Protocol: events.ProtoTCP, RcvNxt: 1001})
			c := Join([]*Recording{a, b}).Joined[0]
			if c.Reached == nil || *c.Reached || c.Drops[1].In != tc.want {
				t.Fatalf("reached %v, server's inbound drops %d, want not reached and %d: %s", c.Reached, c.Drops[1].In, tc.want, c.DataStopped)
			}
			atHost := strings.Contains(c.DataStopped, "stopped at the server's host") && strings.Contains(c.Diagnosis, "server's own host dropped")
			if atHost != (tc.want > 0) {
				t.Errorf("data %q\ndiagnosis %q: want the server's host named %v", c.DataStopped, c.Diagnosis, tc.want > 0)
			}
		})
	}
}

// A middlebox reset is reconciled with what the other end saw: no reset
// at all, or one of its own that the first end's socket did not send.
func TestMiddleboxResetReconciled(t *testing.T) {
	for _, tc := range []struct {
		name       string
		serverRecv bool
		want       string
	}{
		{"server saw none", false, "the server never sent that reset and never received one: its socket was ESTABLISHED then"},
		{"server reset later", true, "the server received a reset of its own at 01:00:05.300000, in FIN_WAIT1, 300ms after the client's, which the client's socket did not send"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := rec("a", 0, 10*time.Second), rec("b", 0, 10*time.Second)
			ca := handshake(a, 1, 100, 200, time.Second, time.Second+time.Millisecond, true)
			cb := handshake(b, 2, 200, 100, 0, time.Second+time.Millisecond, false)
			ca.Events = append(ca.Events, events.Event{Kind: events.KindReceiveReset, State: events.StateEstablished, Time: t0.Add(5 * time.Second), SinceRecv: 4 * time.Second},
				events.Event{Kind: events.KindStateChange, State: events.StateClose, Time: t0.Add(5*time.Second + time.Millisecond)})
			if tc.serverRecv {
				cb.Events = append(cb.Events, events.Event{Kind: events.KindReceiveReset, State: events.StateFinWait1, Time: t0.Add(5*time.Second + 300*time.Millisecond)})
			}
			c := Join([]*Recording{a, b}).Joined[0]
			if c.ResetOrigin != ResetMiddlebox || !strings.Contains(c.Diagnosis, "forgot the flow after 4s of idle") || !strings.Contains(c.Diagnosis, tc.want) {
				t.Errorf("origin %s, diagnosis %q: want middlebox and %q", c.ResetOrigin, c.Diagnosis, tc.want)
			}
		})
	}
}

// The JSON names each end's workload and the sending kernel's reason for
// a peer's reset.
func TestJSONWorkloadAndResetReason(t *testing.T) {
	a, b := rec("a", 0, 10*time.Second), rec("b", 0, 10*time.Second)
	ca := handshake(a, 1, 100, 200, time.Second, time.Second+time.Millisecond, true)
	cb := handshake(b, 2, 200, 100, 0, time.Second+2*time.Millisecond, false)
	cb.Events[0].Workload = (&events.Workload{Kind: events.WorkloadSystemd, Unit: "api.service"}).Finish()
	ca.Events = append(ca.Events, events.Event{Kind: events.KindReceiveReset, Time: t0.Add(5 * time.Second)})
	cb.Events = append(cb.Events, events.Event{Kind: events.KindSendReset, Time: t0.Add(5 * time.Second), ResetReason: 14})
	var out strings.Builder
	if err := WriteJSON(&out, Join([]*Recording{a, b})); err != nil {
		t.Fatal(err)
	}
	var j struct {
		Joined []struct {
			Ends [2]struct {
				Workload string `json:"workload"`
			} `json:"ends"`
			ResetOrigin string `json:"reset_origin"`
			ResetReason string `json:"reset_reason"`
		} `json:"joined"`
	}
	if err := json.Unmarshal([]byte(out.String()), &j); err != nil {
		t.Fatal(err)
	}
	if len(j.Joined) != 1 || j.Joined[0].Ends[1].Workload != "systemd/api.service" || j.Joined[0].ResetOrigin != ResetPeer || j.Joined[0].ResetReason != "TCP_STATE" {
		t.Errorf("want the server's workload and a peer reset for TCP_STATE:\n%s", out.String())
	}
}

// Data that reached the receiver, whose own host then dropped its
// acknowledgements on their way out, stopped at that host on the way back.
func TestAcknowledgementsDroppedAtReceiversHost(t *testing.T) {
	a, b := rec("a", 0, 10*time.Second), rec("b", 0, 10*time.Second)
	ca := handshake(a, 1, 1000, 5000, time.Second, time.Second+time.Millisecond, true)
	cb := handshake(b, 2, 5000, 1000, 0, time.Second+2*time.Millisecond, false)
	for i := range 3 {
		at := t0.Add(2*time.Second + time.Duration(i)*time.Second)
		ca.Events = append(ca.Events, events.Event{Kind: events.KindRetransmit, Seq: 1001, Time: at})
		cb.Events = append(cb.Events, events.Event{Kind: events.KindDrop, DropDir: events.DropOut, DropReason: "NETFILTER_DROP",
			DropLocation: "nf_hook_slow", Protocol: events.ProtoTCP, Seq: 5001, RcvNxt: 1201, Time: at.Add(time.Millisecond)})
	}
	ca.Events = append(ca.Events, events.Event{Kind: events.KindErrorReport, Errno: 110, Time: t0.Add(6 * time.Second)})
	c := Join([]*Recording{a, b}).Joined[0]
	if c.Reached == nil || !*c.Reached || !strings.Contains(c.Diagnosis, "the server's own host dropped 3 packets on their way out (NETFILTER_DROP in nf_hook_slow)") {
		t.Errorf("reached %v, diagnosis %q: want reached, and the server's host dropping its acknowledgements", c.Reached, c.Diagnosis)
	}
}

// Hosts' clocks differ: the overlap is taken after correcting one
// recording's clock by the offset that two or more shared handshakes agree
// on, so a handshake inside the true overlap is joined even when the raw
// clocks put it outside, and one seen at one end only is still listed.
func TestJoinAcrossClockOffset(t *testing.T) {
	// b's clock is 30 s ahead; both recordings ran over the same 10 s.
	a, b := rec("a", 0, 10*time.Second), rec("b", 30*time.Second, 40*time.Second)
	handshake(a, 1, 100, 200, time.Second, time.Second+2*time.Millisecond, true)
	handshake(b, 9, 200, 100, 0, 31*time.Second+3*time.Millisecond, false)
	handshake(a, 2, 300, 400, 2*time.Second, 2*time.Second+2*time.Millisecond, true)
	handshake(b, 8, 400, 300, 0, 32*time.Second+3*time.Millisecond, false)
	handshake(a, 3, 500, 600, 5*time.Second, 5*time.Second+2*time.Millisecond, true)
	r := Join([]*Recording{a, b})
	if len(r.Joined) != 2 || len(r.OneEnd) != 1 || r.OneEnd[0].Cookie != 3 {
		t.Fatalf("joined %d, one end %d: want cookies 1 and 2 joined and 3 at one end only", len(r.Joined), len(r.OneEnd))
	}
	if len(r.Overlaps) != 1 || !r.Overlaps[0].OK || r.Overlaps[0].End.Sub(r.Overlaps[0].Start) < 9*time.Second || r.Overlaps[0].Outside != 0 {
		t.Errorf("overlaps %+v: want about 10 s once b's clock is corrected", r.Overlaps)
	}
	if o := r.Offsets[0]; o.Estimate < 30*time.Second || o.Estimate > 30*time.Second+time.Millisecond {
		t.Errorf("offset %+v, want b 30 s ahead", o)
	}

	// One shared handshake alone does not move the clocks; the output
	// says its ISNs matched outside the overlap.
	a, b = rec("a", 0, 10*time.Second), rec("b", 30*time.Second, 40*time.Second)
	handshake(a, 1, 100, 200, time.Second, time.Second+2*time.Millisecond, true)
	handshake(b, 9, 200, 100, 0, 31*time.Second+3*time.Millisecond, false)
	r = Join([]*Recording{a, b})
	if len(r.Joined) != 0 || r.Overlaps[0].OK || r.Overlaps[0].Outside != 1 {
		t.Fatalf("joined %d, overlaps %+v: want nothing joined, no overlap, 1 match outside", len(r.Joined), r.Overlaps)
	}
	var out strings.Builder
	if err := WriteText(&out, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "do not overlap in time") || !strings.Contains(out.String(), "as if b's clock were 30s ahead of a's: not joined") {
		t.Errorf("text:\n%s", out.String())
	}
}

// Successful receives leave no event: the end that did not see the
// failure takes its idle time from its first event after the failure
// when no data came in between, not from an event long before it.
func TestIdleOfTheOtherEnd(t *testing.T) {
	a, b := rec("a", 0, 20*time.Second), rec("b", 0, 20*time.Second)
	ca := handshake(a, 1, 100, 200, time.Second, time.Second+time.Millisecond, true)
	cb := handshake(b, 2, 200, 100, 0, time.Second+time.Millisecond, false)
	// The client last received 2 s before the reset at 8 s; the server
	// last received at 6 s too (a request, no event), and closed at 9 s.
	ca.Events = append(ca.Events, events.Event{Kind: events.KindReceiveReset, State: events.StateEstablished, Time: t0.Add(8 * time.Second), SinceRecv: 2 * time.Second})
	cb.Events[0].SinceRecv = 0
	cb.Events = append(cb.Events, events.Event{Kind: events.KindStateChange, State: events.StateFinWait1, Time: t0.Add(9 * time.Second), SinceRecv: 3 * time.Second})
	c := Join([]*Recording{a, b}).Joined[0]
	near := func(got, want time.Duration) bool {
		return got > want-2*time.Millisecond && got < want+2*time.Millisecond
	}
	if !near(c.Idle[0], 2*time.Second) || !near(c.Idle[1], 2*time.Second) {
		t.Errorf("idle client %v, server %v: want 2s each", c.Idle[0], c.Idle[1])
	}

	// Data after the failure: the next event cannot tell, so the last
	// event before the failure gives an upper bound.
	cb.Events[1].SinceRecv = 100 * time.Millisecond
	c = Join([]*Recording{a, b}).Joined[0]
	if !near(c.Idle[1], 7*time.Second) || !c.IdleAtMost[1] || c.IdleAtMost[0] {
		t.Errorf("server idle %v (at most %v), client's at most %v: want at most 7s for the server, the client's exact", c.Idle[1], c.IdleAtMost[1], c.IdleAtMost[0])
	}
}

// A reset the other end sent only after this end had received one did
// not cause it: the middlebox's reset came first, the server's idle
// timeout aborted the flow later.
func TestLaterResetIsNotTheCause(t *testing.T) {
	a, b := rec("a", 0, 20*time.Second), rec("b", 0, 20*time.Second)
	ca := handshake(a, 1, 100, 200, time.Second, time.Second+2*time.Millisecond, true)
	cb := handshake(b, 2, 200, 100, 0, time.Second+2*time.Millisecond, false)
	ca.Events = append(ca.Events, events.Event{Kind: events.KindReceiveReset, State: events.StateEstablished, Time: t0.Add(5 * time.Second), SinceRecv: 4 * time.Second})
	cb.Events = append(cb.Events, events.Event{Kind: events.KindSendReset, State: events.StateClose, Time: t0.Add(8 * time.Second), ResetReason: 14})
	c := Join([]*Recording{a, b}).Joined[0]
	if c.ResetOrigin != ResetMiddlebox || !strings.Contains(c.ResetEvidence, "3s after") {
		t.Errorf("origin %q, evidence %q: want middlebox, the server's own reset 3s after the client's", c.ResetOrigin, c.ResetEvidence)
	}

	// Sent a moment after, on the clocks as estimated: the tracepoint
	// fires after the reset left, and veth can deliver it first.
	cb.Events[1].Time = t0.Add(5*time.Second + 200*time.Microsecond)
	if c := Join([]*Recording{a, b}).Joined[0]; c.ResetOrigin != ResetPeer {
		t.Errorf("origin %q, want peer: %s", c.ResetOrigin, c.ResetEvidence)
	}
}
