package join

import (
	"fmt"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

// resetOrigin says who sent the reset an end received: the other end's
// kernel (peer), something between them while the other end's recording
// ran (middlebox), nobody can tell (unknown); or, when no end received
// one, the end that sent one (local).
func (c *Conn) resetOrigin() {
	for i := range 2 {
		recv := find(c.Ends[i], events.KindReceiveReset)
		if recv == nil {
			continue
		}
		j := 1 - i
		c.ResetReceiver = c.Ends[i]
		sent, later := c.sentReset(j, recv.Time)
		if sent != nil {
			c.sent = sent
			c.ResetOrigin = ResetPeer
			c.ResetReason = reasonName(sent.ResetReason)
			c.ResetEvidence = fmt.Sprintf("the %s's kernel sent a reset at %s (%s); the %s received one at %s",
				c.name(j), Stamp(sent.Time), reasonText(sent.ResetReason), c.name(i), Stamp(recv.Time))
			return
		}
		t := c.on(recv.Time, i, j)
		if !c.covers(j, t) {
			c.ResetOrigin = ResetUnknown
			c.ResetEvidence = fmt.Sprintf("the %s received a reset at %s, when the %s's recording was not running (it covers %s to %s)",
				c.name(i), Stamp(recv.Time), c.name(j), Stamp(c.Ends[j].Rec.Start), Stamp(c.Ends[j].Rec.End))
		} else {
			c.ResetOrigin = ResetMiddlebox
			c.ResetEvidence = fmt.Sprintf("the %s received a reset at %s; the %s's recording covers that time and its socket sent no reset: %s",
				c.name(i), Stamp(recv.Time), c.name(j), c.stateAt(j, t))
		}
		if later != nil {
			c.ResetEvidence += fmt.Sprintf("; the %s's own reset, sent at %s (%s), came %s after the %s's, so did not cause it",
				c.name(j), Stamp(later.Time), reasonText(later.ResetReason), format.Duration(c.on(later.Time, j, i).Sub(recv.Time)), c.Ends[i].Role())
		}
		return
	}
	for i := range 2 {
		if sent := find(c.Ends[i], events.KindSendReset); sent != nil {
			c.ResetOrigin = ResetLocal
			c.ResetReason = reasonName(sent.ResetReason)
			c.ResetEvidence = fmt.Sprintf("the %s sent a reset at %s (%s); the %s's recording has no reset received",
				c.name(i), Stamp(sent.Time), reasonText(sent.ResetReason), c.name(1-i))
			return
		}
	}
}

// sentReset finds the reset end j sent that end i received at recv (i's
// clock): the last one sent no later than recv, give or take the clock
// offset's bound and 10 ms (the tracepoint fires after the reset left,
// and a veth can deliver it first). later is the first one sent after
// that: it cannot have caused what end i received.
func (c *Conn) sentReset(j int, recv time.Time) (sent, later *events.Event) {
	i := 1 - j
	limit := recv.Add(c.within + 10*time.Millisecond)
	for k := range c.Ends[j].Events {
		ev := &c.Ends[j].Events[k]
		if ev.Kind != events.KindSendReset {
			continue
		}
		if !c.on(ev.Time, j, i).After(limit) {
			sent = ev
		} else if later == nil {
			later = ev
		}
	}
	return sent, later
}

// resetReasons are enum sk_rst_reason (include/net/rstreason.h, 6.10+).
var resetReasons = [...]string{
	"NOT_SPECIFIED", "NO_SOCKET", "TCP_INVALID_ACK_SEQUENCE", "TCP_RFC7323_PAWS",
	"TCP_TOO_OLD_ACK", "TCP_ACK_UNSENT_DATA", "TCP_FLAGS", "TCP_OLD_ACK",
	"TCP_ABORT_ON_DATA", "TCP_TIMEWAIT_SOCKET", "INVALID_SYN", "TCP_ABORT_ON_CLOSE",
	"TCP_ABORT_ON_LINGER", "TCP_ABORT_ON_MEMORY", "TCP_STATE", "TCP_KEEPALIVE_TIMEOUT",
	"TCP_DISCONNECT_WITH_DATA", "MPTCP_RST_EUNSPEC", "MPTCP_RST_EMPTCP", "MPTCP_RST_ERESOURCE",
	"MPTCP_RST_EPROHIBIT", "MPTCP_RST_EWQ2BIG", "MPTCP_RST_EBADPERF", "MPTCP_RST_EMIDDLEBOX", "ERROR",
}

// ResetReason names a reset reason; on kernels before 6.10 the kernel
// gives none and the event carries 0.
func ResetReason(r uint32) string {
	if int(r) < len(resetReasons) {
		return resetReasons[r]
	}
	return fmt.Sprintf("reason %d", r)
}

func reasonName(r uint32) string {
	if r == 0 {
		return ""
	}
	return ResetReason(r)
}

func reasonText(r uint32) string {
	if r == 0 {
		return "no reason given: NOT_SPECIFIED, or a kernel before 6.10"
	}
	return "reason " + ResetReason(r)
}
