package diagnose

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

var (
	eTIMEDOUT    = events.ETIMEDOUT
	eHOSTUNREACH = events.EHOSTUNREACH
	eNETUNREACH  = events.ENETUNREACH
	eCONNREFUSED = events.ECONNREFUSED
	eCONNRESET   = events.ECONNRESET
	ePIPE        = events.EPIPE
	eAGAIN       = events.EAGAIN
	eNOBUFS      = events.ENOBUFS
	ePERM        = events.EPERM
)

// terminal rules end the connection: once one is concluded, the rest of
// the socket's events belong to the same failure.
var terminal = []string{RuleIdleReset, RulePeerReset, RuleBlackHole, RulePMTUBlackHole, RuleLocalDrop, RuleRefused, RuleLocalShutdown}

func (s *sockState) ended() bool {
	for _, r := range terminal {
		if s.done(r) {
			return true
		}
	}
	return false
}

func (e *Engine) classify(s *sockState, ev *events.Event) (Diagnosis, bool) {
	if ev.Kind == events.KindSendError && ev.Layer == events.LayerSyscall {
		if s.done(RuleOutsideStack) {
			return Diagnosis{}, false
		}
		return outsideStack(s, ev), true
	}
	if s.ended() {
		return Diagnosis{}, false
	}
	syn := ev.State == events.StateSynSent || s.synMono != 0 && s.estMono == 0 && !s.closed
	switch ev.Kind {
	case events.KindReceiveReset:
		if ev.State == events.StateSynSent {
			return refused(s, ev, eCONNREFUSED, true), true
		}
		return e.resetOf(s, ev)
	case events.KindErrorReport:
		switch ev.Errno {
		case eCONNRESET, ePIPE:
			if s.resets > 0 {
				return Diagnosis{}, false // judged at the reset
			}
			if s.sentResets > 0 {
				// This socket reset the connection itself (close with
				// SO_LINGER 0 or unread data, a disconnect): nothing came
				// from the peer.
				return Diagnosis{}, false
			}
			return e.resetOf(s, ev)
		}
		return e.ended(s, ev, syn)
	case events.KindSendError:
		switch ev.Errno {
		case eAGAIN, eNOBUFS:
			if s.done(RuleBackpressure) {
				return Diagnosis{}, false
			}
			return backpressure(s, ev)
		}
		if s.resets > 0 || s.errReports > 0 {
			// The reset or error report was the failure; this send only
			// reports it (or, after it, EPIPE).
			return Diagnosis{}, false
		}
		switch ev.Errno {
		case eCONNRESET:
			return e.resetOf(s, ev)
		case ePIPE:
			return localShutdown(s, ev), true
		case ePERM:
			// A local firewall's verdict, as a datagram send reports it.
			return localDrop(s, ev)
		}
		return e.ended(s, ev, syn)
	}
	return Diagnosis{}, false
}

// ended classifies a connection ended by the kernel: a timeout, or an
// ICMP error that was fatal or stored as the soft error.
func (e *Engine) ended(s *sockState, ev *events.Event, syn bool) (Diagnosis, bool) {
	switch ev.Errno {
	case eTIMEDOUT, eHOSTUNREACH, eNETUNREACH:
		// This host dropping the packets itself is not the path's fault,
		// whatever the timeout or the stored soft error says.
		if d, ok := localDrop(s, ev); ok {
			return d, true
		}
	}
	switch ev.Errno {
	case eCONNREFUSED:
		return refused(s, ev, ev.Errno, false), true
	case eHOSTUNREACH, eNETUNREACH:
		// With a retransmit chain behind it the ICMP error was only the
		// soft error the timeout reported; without one it was the answer.
		// A connect's SYN may have been retransmitted before the ICMP
		// error ended it; the report then comes after the close.
		if s.run.n == 0 || (syn || s.run.syn) && s.run.n < 2 {
			return refused(s, ev, ev.Errno, false), true
		}
	case eTIMEDOUT:
	default:
		return Diagnosis{}, false
	}
	if d, ok := e.idleDrop(s, ev); ok {
		return d, true
	}
	if d, ok := pmtu(s, ev, false); ok {
		return d, true
	}
	d := blackHole(s, ev, syn)
	d.Evidence.Text += e.notIdle(s)
	return d, true
}

// resetOf names a reset from the peer: after a silence it is the idle
// timeout of something on the path; on a live connection, the peer (or a
// device acting for it) aborted.
func (e *Engine) resetOf(s *sockState, ev *events.Event) (Diagnosis, bool) {
	if d, ok := e.idleReset(s, ev); ok {
		return d, true
	}
	return peerReset(s, ev), true
}

// peerReset: a reset on a connection that was not idle. The peer closed
// with unread data or SO_LINGER 0, crashed and restarted, or a firewall or
// load balancer reset the flow.
func peerReset(s *sockState, ev *events.Event) Diagnosis {
	d := base(s, ev, RulePeerReset, "Connection reset by the peer while active")
	d.Errno = eCONNRESET
	d.Confidence, d.ConfidenceWhy = Medium, "the reset came from the peer's direction; the tracer cannot see whether the peer itself or a device on the path sent it"
	quiet := "last received " + format.Duration(ev.SinceRecv) + " before"
	if ev.SinceRecv < 0 {
		quiet = "no receive time known"
	}
	d.Evidence.Text = fmt.Sprintf("a reset arrived in %s, %s after this side last sent and %s: the connection was not idle",
		events.StateName(ev.State), format.Duration(ev.SinceSend), quiet)
	if ev.SinceSend < 0 {
		d.Evidence.Text = fmt.Sprintf("a reset arrived in %s (%s)", events.StateName(ev.State), quiet)
	}
	if sending(ev.SendQ, ev.MSS) {
		d.Evidence.Text += fmt.Sprintf("; %d bytes were unacknowledged or waiting to be sent", ev.SendQ)
	}
	d.NextStep = "Look at the peer at this time: an abortive close (SO_LINGER 0, closing with unread data), a crash or restart, or a connection limit. If the peer shows nothing, capture both ends: a firewall or load balancer may be sending the reset."
	return d
}

func base(s *sockState, ev *events.Event, rule, name string) Diagnosis {
	return Diagnosis{
		Time: ev.Time, Mono: ev.Mono, Rule: rule, Name: name,
		Cookie: s.cookie, PID: s.pid, Comm: s.comm, OwnerKnown: s.ownerKnown,
		Proto: s.proto, Src: s.src, Dst: s.dst, Errno: ev.Errno,
		Evidence: Evidence{
			Events: s.events, Kinds: append([]string(nil), s.kinds...),
			SinceSend: ev.SinceSend, SinceRecv: ev.SinceRecv, PeerDataAge: -1,
			Resets: s.resets, ErrorReports: s.errReports, State: ev.State,
			SendQ: ev.SendQ, SndBuf: ev.SndBuf, SndWnd: ev.SndWnd,
		},
	}
}

// idleReset: the reset (or ECONNRESET) answered the first send after a
// silence. The silence is measured as the time since the peer last sent
// data (lrcvtime); the reset must have come soon after a send made well
// after that, with no other event of the socket in between.
func (e *Engine) idleReset(s *sockState, ev *events.Event) (Diagnosis, bool) {
	idle, quiet := ev.SinceRecv, ev.SinceRecv-ev.SinceSend
	if ev.SinceRecv < 0 || ev.SinceSend < 0 || quiet < e.cfg.MinIdle || ev.SinceSend > min(idle/2, 30*time.Second) {
		return Diagnosis{}, false
	}
	// No data from the peer is not idleness: during an upload the peer
	// only acknowledges. A socket with more than a request's worth
	// unacknowledged or queued was sending.
	if sending(ev.SendQ, ev.MSS) {
		return Diagnosis{}, false
	}
	// Events after the send (its own retransmits) are part of the failure;
	// one inside the silence means the connection was not idle.
	if a := s.activity; a != 0 && ev.Mono > a {
		if ago := time.Duration(ev.Mono - a); ago < idle && ago > ev.SinceSend {
			return Diagnosis{}, false
		}
	}
	name := "Idle connection reset by a middlebox"
	closedFirst := ev.State == events.StateCloseWait || ev.State == events.StateLastAck
	if closedFirst {
		name = "Idle connection closed by the peer, then reset on reuse"
	}
	d := base(s, ev, RuleIdleReset, name)
	d.Evidence.Idle = idle
	what := "reset"
	if ev.Kind == events.KindSendError {
		what = "failed send with " + events.ErrnoName(ev.Errno)
	} else if ev.Kind == events.KindErrorReport {
		what = "error report " + events.ErrnoName(ev.Errno)
	}
	if ev.Kind == events.KindReceiveReset {
		d.Errno = eCONNRESET
	}
	d.Evidence.Text = fmt.Sprintf("no data from the peer for %s, then a %s %s after the first send that followed (%s)",
		format.Duration(idle), what, format.Duration(ev.SinceSend), events.StateName(ev.State))
	d.Confidence, d.ConfidenceWhy = e.idleConfidence(s, ev, idle)
	if closedFirst {
		d.Evidence.Text += "; the peer had already closed its side (FIN), so its own idle timeout ended the connection"
		d.NextStep = "Set the client's idle limit for pooled connections below the server's keep-alive timeout (and the middlebox's), or check a pooled connection for a pending FIN before reusing it."
	} else {
		d.NextStep = "Enable TCP keepalive (or an application ping) with an interval shorter than the middlebox idle timeout (Azure Load Balancer: 4 min; AWS NLB: 350 s), or close pooled connections idle longer than the smallest server or middlebox timeout."
	}
	return d, true
}

// peerSlack is the jiffy granularity of lrcvtime (10 ms at HZ=100): a
// since_recv this close to the connection's age means the last data
// received was the handshake itself.
const peerSlack = 10 * time.Millisecond

// peerSentData says whether the peer sent data on the connection before ev:
// the kernel's count of data segments received says it outright. Without
// that count (a recording made before sendtrace read it), only a last
// receive measurably later than the handshake shows that data came;
// anything else is unknown, since an answer within a jiffy or two of the
// handshake looks the same as none.
func peerSentData(s *sockState, ev *events.Event, idle time.Duration) (sent, known bool) {
	if ev.DataSegsIn >= 0 {
		return ev.DataSegsIn > 0, true
	}
	if s.estMono != 0 && ev.Mono > s.estMono && idle < time.Duration(ev.Mono-s.estMono)-peerSlack {
		return true, true
	}
	return false, false
}

func (e *Engine) idleConfidence(s *sockState, ev *events.Event, idle time.Duration) (string, string) {
	switch sent, known := peerSentData(s, ev, idle); {
	case known && !sent:
		return Low, "the peer never sent data on this connection (no data segment received), so the silence may be one-sided; successful sends are not visible"
	case !known && s.estMono != 0:
		return Low, "the peer's last data came with the handshake or within " + format.Duration(peerSlack) + " of it, if it sent any, so the silence may be one-sided; successful sends are not visible"
	}
	if idle >= e.cfg.LongIdle {
		return High, "a reset right after the first send following a long silence is the signature of a forgotten flow"
	}
	return Medium, fmt.Sprintf("the silence (%s) is shorter than common middlebox timeouts; a peer restart would look the same", format.Duration(idle))
}

// idleDrop is the silent form of an idle reset: the middlebox drops the
// first segment after the silence, and the retransmits of that segment
// run into the timeout.
func (e *Engine) idleDrop(s *sockState, ev *events.Event) (Diagnosis, bool) {
	r := &s.run
	if r.n == 0 || r.syn || r.firstSince < 0 || r.firstSent < 0 {
		return Diagnosis{}, false
	}
	idle := r.firstSince
	quiet := r.firstSince - r.firstSent
	if quiet < e.cfg.MinIdle || r.firstSent > idle/2 {
		return Diagnosis{}, false
	}
	if r.quietSince != 0 && r.startMono > r.quietSince && time.Duration(r.startMono-r.quietSince) < idle {
		return Diagnosis{}, false
	}
	if sending(r.firstSendQ, r.firstMSS) {
		// The stuck segment was one of a stream: see notIdle.
		return Diagnosis{}, false
	}
	if sent, _ := peerSentData(s, ev, time.Duration(ev.Mono-r.startMono)+idle); !sent {
		// The peer never sent data, or that is unknown: the silence is
		// not known to be mutual.
		return Diagnosis{}, false
	}
	d := base(s, ev, RuleIdleReset, "Idle connection dropped by a middlebox")
	fillRun(&d, s, ev)
	d.Evidence.Idle = quiet
	d.Evidence.Text = fmt.Sprintf("no data from the peer for %s before a send; that send's segment was retransmitted %d times over %s and never acknowledged, then %s (%s)",
		format.Duration(quiet), r.n, format.Duration(d.Evidence.Span), events.ErrnoName(ev.Errno), d.Evidence.Setting)
	d.Confidence, d.ConfidenceWhy = e.idleConfidence(s, ev, quiet)
	if d.Confidence == High {
		d.ConfidenceWhy = "the first send after a long silence was never acknowledged: the flow was forgotten and its packets silently dropped"
	}
	d.NextStep = "Enable TCP keepalive (or an application ping) with an interval shorter than the middlebox idle timeout (Azure Load Balancer: 4 min), or close pooled connections idle longer than it."
	return d, true
}

// sending says whether a socket had more than a request's worth of data
// unacknowledged or waiting to be sent (Send-Q): at least two full-size
// segments. A connection in that state was sending, whatever the time
// since the peer last sent data says: during an upload the peer only
// acknowledges, and the kernel keeps no time of its last ACK in what
// sendtrace records. An idle connection whose first write after the
// silence is that large looks the same, and is not called idle either.
func sending(sendQ, mss uint32) bool {
	if mss == 0 {
		mss = 1460
	}
	return sendQ >= 2*mss
}

// notIdle is what a black hole's evidence adds when the peer had sent no
// data for a while before the loss, but the connection was sending, so
// that silence was no idle period (see sending): "" otherwise.
func (e *Engine) notIdle(s *sockState) string {
	r := &s.run
	if r.n == 0 || r.syn || r.firstSince < 0 || r.firstSent < 0 || !sending(r.firstSendQ, r.firstMSS) {
		return ""
	}
	quiet := r.firstSince - r.firstSent
	if quiet < e.cfg.MinIdle {
		return ""
	}
	return fmt.Sprintf("; the peer had sent no data for %s, but this side was sending (%d bytes unacknowledged or queued when the loss began), so the connection was not idle",
		format.Duration(quiet), r.firstSendQ)
}

// fullSizeCrossed is how many full-size segments' worth of acknowledged
// data shows that the path carried full-size segments: a sender with
// that much to send fills its segments to the MSS.
const fullSizeCrossed = 10

// ackedBefore is the data the peer acknowledged before the stuck
// segment: from the connection's first byte (its ISN, seen when it was
// established) to the segment the retransmits repeat (snd_una). ok is
// false when the connection was not seen from its handshake.
func (s *sockState) ackedBefore() (acked uint32, ok bool) {
	r := &s.run
	if !s.hasISN || r.n == 0 || r.syn {
		return 0, false
	}
	una := r.lastEv.SndUna
	if una == 0 {
		una = r.seq
	}
	d := int32(una - (s.sndISN + 1))
	if d < 0 {
		return 0, false
	}
	return uint32(d), true
}

// fullSizeAcked says whether enough data was acknowledged before the
// stuck segment that full-size segments had crossed the path, and says so
// in words.
func (s *sockState) fullSizeAcked() (string, bool) {
	mss := s.run.mssLast
	acked, ok := s.ackedBefore()
	if !ok || mss == 0 || acked < fullSizeCrossed*mss {
		return "", false
	}
	return fmt.Sprintf("%d bytes had been acknowledged before it, as many as %d full-size segments, so full-size segments had crossed the path",
		acked, acked/mss), true
}

// fillRun adds the retransmit episode and the timeout it implies.
func fillRun(d *Diagnosis, s *sockState, ev *events.Event) {
	r := &s.run
	ev2 := &d.Evidence
	ev2.Retransmits = s.nRTX
	ev2.RetransSegs = s.segs
	ev2.SameSeq = r.n
	ev2.SegmentBytes = r.bytes
	ev2.MSS = r.mssLast
	ev2.MSSChanged = r.mssChanged
	ev2.MaxBackoff = r.maxBackoff
	ev2.MaxRTO = r.maxRTO
	if r.n == 0 {
		return
	}
	// Measured from the first retransmission, not from the stuck data's
	// first sending, which no event marks.
	start := r.startMono
	if ev.Mono > start {
		ev2.Span = time.Duration(ev.Mono - start)
	}
	if ev.SinceRecv >= 0 {
		ev2.PeerDataAge = ev.SinceRecv
	}
	if ev.Errno != 0 {
		ev2.Timeout = ev2.Span
		ev2.Setting = s.setting(ev.Mono)
	}
}

// This kernel's rule for giving up on unacknowledged data, as measured
// in the lab (test/diagnose TestRetries2AsTheKernelDoes): it keeps a clock
// from the stuck data's first retransmission timeout (a tail loss probe
// does not start it) or, in SYN_SENT, from the SYN's first sending, and at
// each retransmission timeout gives up once that clock has reached
// tcp_model_timeout(boundary): base·(2^(boundary+1)−1), base 200 ms (1 s
// for a SYN), its doubling capped at tcp_rto_max. Until then it
// retransmits. So tcp_retries2=3, whose model is 3 s, retransmits four
// times with a 204 ms RTO and gives up 6.1 s after the first
// retransmission, not three times after 3 s as the model alone suggests;
// tcp_retries2=4 (6.2 s) may end the same way, at the same timeout.
func modelTimeout(boundary int, base, rtoMax time.Duration) time.Duration {
	thresh := 0
	for base<<(thresh+1) <= rtoMax {
		thresh++
	}
	if boundary <= thresh {
		return time.Duration((2<<boundary)-1) * base
	}
	return time.Duration((2<<thresh)-1)*base + time.Duration(boundary-thresh)*rtoMax
}

// timerSlack is how far an observed timeout may lie from the kernel's
// check and still be taken as on its side: timers fire late by a jiffy
// or two, and events are stamped a little after the kernel's clock.
const timerSlack = 30 * time.Millisecond

// setting names what ended the run's connection at end (mono): the
// tcp_retries2 (tcp_syn_retries in SYN_SENT) recorded for the socket's
// network namespace, checked against what the kernel does with it, and
// said plainly when the observed time does not match it; when the
// recording has no value, the values that give the observed time.
func (s *sockState) setting(end uint64) string {
	r := &s.run
	name, base, def := "net.ipv4.tcp_retries2", 200*time.Millisecond, 15
	clock, what, retrans := r.clockMono, "the first retransmission", r.clockN
	if r.syn {
		name, base, def = "net.ipv4.tcp_syn_retries", time.Second, 6
		clock, what, retrans = s.synMono, "the SYN was first sent", r.n
		if clock == 0 || clock > r.startMono {
			// Not seen from its connect: the first SYN retransmission
			// comes one initial RTO (1 s) after the SYN.
			clock = r.startMono - uint64(min(time.Second, time.Duration(r.startMono)))
		}
	}
	if clock == 0 || clock > end {
		clock, retrans = r.startMono, r.n
	}
	elapsed := time.Duration(end - clock)
	last := time.Duration(0) // the last retransmission: the kernel had not given up yet
	if r.lastMono > clock {
		last = time.Duration(r.lastMono - clock)
	}
	var vals map[string]string
	if s.sysctls != nil && s.netns != 0 {
		vals = s.sysctls(s.netns)
	}
	rtoMax := 120 * time.Second
	if v, err := strconv.Atoi(vals["net.ipv4.tcp_rto_max_ms"]); err == nil && v > 0 {
		rtoMax = time.Duration(v) * time.Millisecond
	}
	fits := func(n int) bool {
		m := modelTimeout(n, base, rtoMax)
		return m > last-timerSlack && m <= elapsed+timerSlack
	}
	user := "a TCP_USER_TIMEOUT of about " + format.Duration(elapsed)
	rule := func(m string) string {
		return fmt.Sprintf("this kernel gives up at the first retransmission timeout at least %s after %s", m, what)
	}
	ns := "net:[" + strconv.FormatUint(uint64(s.netns), 10) + "]"
	if v, ok := vals[name]; ok {
		n, err := strconv.Atoi(v)
		if err == nil && n > 0 {
			m := modelTimeout(n, base, rtoMax)
			limit := rule(format.Duration(m))
			switch {
			case fits(n):
				return fmt.Sprintf("%s=%d, as recorded for %s: %s, here %s after it, after %d retransmissions",
					name, n, ns, limit, format.Duration(elapsed), retrans)
			case elapsed+timerSlack < m:
				return fmt.Sprintf("not the recorded %s=%d (%s), with which %s; the kernel gave up %s after it: %s fits",
					name, n, ns, limit, format.Duration(elapsed), user)
			default:
				return fmt.Sprintf("not the recorded %s=%d (%s), with which %s; the kernel was still retransmitting %s after it and gave up after %s: %s, which overrides it, fits",
					name, n, ns, limit, format.Duration(last), format.Duration(elapsed), user)
			}
		}
	}
	var fit []int
	for n := 1; n <= 30 && len(fit) < 2; n++ {
		if fits(n) {
			fit = append(fit, n)
		}
	}
	if len(fit) == 0 {
		return user + " (no " + name + " value gives this time)"
	}
	vs, ms := strconv.Itoa(fit[0]), format.Duration(modelTimeout(fit[0], base, rtoMax))
	if len(fit) > 1 {
		vs += " or " + strconv.Itoa(fit[1])
		ms += " or " + format.Duration(modelTimeout(fit[1], base, rtoMax))
	}
	if slices.Contains(fit, def) {
		vs += " (" + strconv.Itoa(def) + " is the default)"
	}
	return fmt.Sprintf("%s=%s (its value in this socket's namespace is not known: %s, here %s after it), or %s",
		name, vs, rule(ms), format.Duration(elapsed), user)
}

// pmtu: the stuck segment was full-size every time, the MSS never moved,
// and small packets still crossed the path.
func pmtu(s *sockState, ev *events.Event, ongoing bool) (Diagnosis, bool) {
	r := &s.run
	if r.n < 2 || r.syn || r.full != r.n || r.mssChanged || r.minBytes+40 <= 1280 {
		return Diagnosis{}, false
	}
	if _, crossed := s.fullSizeAcked(); crossed {
		// The path carried full-size segments before: whatever stopped
		// this one stops all of this side's data (blackHole says so).
		return Diagnosis{}, false
	}
	d := base(s, ev, RulePMTUBlackHole, "Path MTU black hole")
	fillRun(&d, s, ev)
	sinceStart := time.Duration(0)
	if ev.Mono > r.startMono {
		sinceStart = time.Duration(ev.Mono - r.startMono)
	}
	var small string
	switch {
	case ev.SinceRecv >= 0 && ev.SinceRecv < sinceStart:
		d.Confidence = High
		d.ConfidenceWhy = "data from the peer kept arriving while every full-size segment was lost, so the path carries small packets only"
		small = fmt.Sprintf("while the peer's (smaller) segments kept arriving, the last %s before the end", format.Duration(ev.SinceRecv))
	case r.firstSince >= 0 && r.firstSent >= 0 && r.firstSince-r.firstSent <= time.Second:
		d.Confidence = Medium
		d.ConfidenceWhy = "the connection exchanged data until its first full-size segment, which never got through; a path that died at that moment would look the same"
		small = fmt.Sprintf("after the peer had answered %s before the stuck segment was sent", format.Duration(r.firstSince-r.firstSent))
		if sent, known := peerSentData(s, ev, time.Duration(ev.Mono-r.startMono)+r.firstSince); known && !sent {
			d.ConfidenceWhy = "the connection was new and carried only small segments before its first full-size one, which never got through; a path that died at that moment would look the same"
			small = fmt.Sprintf("%s after the handshake (the peer had sent no data)", format.Duration(r.firstSince-r.firstSent))
		}
	default:
		return Diagnosis{}, false
	}
	end := "then " + events.ErrnoName(ev.Errno)
	if ongoing {
		end = "still unacknowledged when the trace ended"
	} else if d.Evidence.Setting != "" {
		end += " (" + d.Evidence.Setting + ")"
	}
	d.Evidence.Text = fmt.Sprintf("the same %d-byte segment (MSS %d, unchanged) was retransmitted %d times over %s with backoff up to %d, %s; %s",
		r.bytes, r.mssLast, r.n, format.Duration(d.Evidence.Span), r.maxBackoff, small, end)
	d.NextStep = "Check that ICMP fragmentation-needed (IPv4 type 3 code 4) and ICMPv6 packet-too-big reach this host (firewalls, security groups, tunnels); set net.ipv4.tcp_mtu_probing=1 as a fallback; clamp the MSS on the tunnel or VPN hop."
	return d, true
}

func blackHole(s *sockState, ev *events.Event, syn bool) Diagnosis {
	r := &s.run
	d := base(s, ev, RuleBlackHole, "Unresponsive peer or black-holed path")
	fillRun(&d, s, ev)
	what := "segment"
	if syn || r.syn {
		d.Name = "Unresponsive peer or black-holed path (during connect)"
		what = "SYN"
	}
	soft := ""
	if ev.Errno == eHOSTUNREACH || ev.Errno == eNETUNREACH {
		soft = fmt.Sprintf("; an ICMP %s had been stored as the soft error, so the timeout reported it instead of ETIMEDOUT", events.ErrnoName(ev.Errno))
	}
	switch {
	case r.n >= 2 && (r.maxBackoff >= 1 || r.syn):
		// A SYN's first retransmissions come a second apart without
		// backing off (tcp_syn_linear_timeouts, 6.5+).
		d.Confidence = High
		d.ConfidenceWhy = "a retransmit chain with growing backoff and no acknowledgement until the kernel gave up"
		if r.maxBackoff == 0 {
			d.ConfidenceWhy = "a chain of SYN retransmits, never answered, until the kernel gave up"
		}
		d.Evidence.Text = fmt.Sprintf("the same %s (%d bytes) was retransmitted %d times over %s, backoff up to %d and RTO up to %s, never acknowledged; then %s after %s: %s%s",
			what, r.bytes, r.n, format.Duration(d.Evidence.Span), r.maxBackoff, format.Duration(r.maxRTO), events.ErrnoName(ev.Errno), format.Duration(d.Evidence.Span), d.Evidence.Setting, soft)
		if r.full == r.n && r.minBytes+40 > 1280 && !syn {
			if crossed, ok := s.fullSizeAcked(); ok {
				d.Evidence.Text += "; every retransmitted segment was full-size, but " + crossed + ": no path MTU black hole, unless the path's MTU changed"
			} else {
				d.Evidence.Text += "; every retransmitted segment was full-size, so if small packets still pass, suspect a path MTU black hole"
			}
		}
	case r.n >= 1:
		d.Confidence = Medium
		d.ConfidenceWhy = "only one retransmit of the failing segment was seen"
		if r.n > 1 {
			d.ConfidenceWhy = "the failing segment's retransmits did not back off"
		}
		d.Evidence.Text = fmt.Sprintf("%d retransmit(s) seen, then %s%s", r.n, events.ErrnoName(ev.Errno), soft)
	case ev.Errno == eTIMEDOUT && ev.SendQ == 0 && !syn && s.estMono != 0:
		// Nothing unacknowledged, nothing retransmitted: of what ends a
		// connection with ETIMEDOUT, only keepalive probes do that.
		d.Confidence = Medium
		d.ConfidenceWhy = "nothing was unacknowledged or queued and nothing was retransmitted, so unanswered keepalive probes ended the connection: the peer or the path stopped answering while it idled"
		d.Evidence.Text = fmt.Sprintf("ETIMEDOUT with nothing unacknowledged or queued and no retransmit, %s after this side last sent: keepalive probes went unanswered%s",
			format.Duration(max(ev.SinceSend, 0)), soft)
	default:
		d.Confidence = Low
		d.ConfidenceWhy = "no retransmits were seen on this socket: keepalive probes or TCP_USER_TIMEOUT may have ended it, or the events were lost"
		d.Evidence.Text = fmt.Sprintf("%s with no retransmit seen (keepalive probes unanswered, or events missed)%s", events.ErrnoName(ev.Errno), soft)
	}
	d.NextStep = "Check the path and the peer (mtr/ping to the destination, tcpdump on both ends, firewalls that drop silently). To fail sooner, lower net.ipv4.tcp_retries2 or set TCP_USER_TIMEOUT; for idle connections use keepalive."
	if syn || r.syn {
		d.NextStep = "Check that the destination is up and that no firewall silently drops SYNs to it; connect timeouts follow net.ipv4.tcp_syn_retries, or set a shorter connect timeout in the application."
	}
	return d
}

// stuckDropping concludes, at the end of a stream, a connection whose
// packets this host kept dropping with no retransmit chain to show for it
// (the data never left, so TCP only probes).
func stuckDropping(s *sockState, now uint64) (Diagnosis, bool) {
	d := &s.drops
	// Still dropping at the end, probes spread over a second or more:
	// a connection that only lost a burst to a queue is not stuck.
	if s.run.n > 0 || d.out < 3 || s.lastMono != d.lastMono || time.Duration(d.lastMono-d.firstMono) < time.Second {
		return Diagnosis{}, false
	}
	ev := events.Event{Mono: max(now, d.lastMono), Protocol: s.proto, State: s.state, SinceSend: -1, SinceRecv: -1}
	dg, ok := localDrop(s, &ev)
	if ok {
		dg.Confidence = Medium
		dg.ConfidenceWhy = "the connection had not failed yet when the trace ended; " + dg.ConfidenceWhy
	}
	return dg, ok
}

// stuck concludes, at the end of a stream, a connection still
// retransmitting one segment with growing backoff.
func stuck(s *sockState, now uint64) (Diagnosis, bool) {
	ev := s.run.lastEv
	ev.Mono = max(now, ev.Mono)
	ev.Errno = 0
	if d, ok := localDrop(s, &ev); ok {
		d.Confidence = Medium
		d.ConfidenceWhy = "the connection had not failed yet when the trace ended; " + d.ConfidenceWhy
		return d, true
	}
	if d, ok := pmtu(s, &ev, true); ok {
		d.Confidence = Medium
		d.ConfidenceWhy = "the connection had not failed yet when the trace ended; " + d.ConfidenceWhy
		return d, true
	}
	d := blackHole(s, &ev, s.run.syn)
	d.Confidence = Medium
	d.ConfidenceWhy = "the connection had not failed yet when the trace ended"
	d.Evidence.Text = fmt.Sprintf("the same segment (%d bytes) was retransmitted %d times with backoff up to %d and RTO up to %s, still unacknowledged when the trace ended",
		s.run.bytes, s.run.n, s.run.maxBackoff, format.Duration(s.run.maxRTO))
	return d, true
}

// zeroWindowHeld is how long a peer's window must stay at zero, with
// nothing acknowledged, before its reader is called stuck.
const zeroWindowHeld = time.Second

func backpressure(s *sockState, ev *events.Event) (Diagnosis, bool) {
	d := base(s, ev, RuleBackpressure, "Send buffer exhausted (backpressure)")
	tcp := ev.Protocol == events.ProtoTCP
	switch {
	case tcp && ev.SndBuf > 0:
		pct := float64(ev.SendQ) * 100 / float64(ev.SndBuf)
		wnd := "the peer's window is " + strconv.FormatUint(uint64(ev.SndWnd), 10) + " bytes"
		if ev.SndWnd == 0 {
			wnd = "the peer advertises a zero window (its application is not reading)"
		}
		d.Evidence.Text = fmt.Sprintf("%s on a %d-byte send with %d bytes queued (Send-Q) against a %d-byte send buffer (%.0f%%, the rest is per-packet overhead); %s",
			events.ErrnoName(ev.Errno), ev.Bytes, ev.SendQ, ev.SndBuf, pct, wnd)
		switch {
		case ev.SndWnd == 0:
			// A fast transfer meets a zero window whenever its reader
			// falls behind for a moment; a reader that does not read
			// keeps it closed, with nothing acknowledged.
			z := &s.zeroWnd
			if z.mono == 0 || ev.SndUna != z.una {
				z.mono, z.una = ev.Mono, ev.SndUna
				return Diagnosis{}, false
			}
			held := time.Duration(ev.Mono - z.mono)
			if held < zeroWindowHeld {
				return Diagnosis{}, false
			}
			d.Confidence = High
			d.ConfidenceWhy = "the peer's window stayed at zero with nothing acknowledged: the connection is stuck behind a reader that does not read, not cut"
			d.Evidence.Text += fmt.Sprintf(", and has for %s with nothing acknowledged", format.Duration(held))
		case pct >= 40:
			s.zeroWnd.mono = 0
			// With the peer's window open, a full queue is no stuck
			// reader: a non-blocking sender faster than the path fills
			// its buffer from its first writes (iperf3, Go's net/http
			// uploading), and one whose oldest segment is being
			// retransmitted is full because nothing is acknowledged, as
			// the connection's end will say. Nothing to name yet: a
			// later EAGAIN with the window at zero is.
			return Diagnosis{}, false
		default:
			d.Confidence = Medium
			d.ConfidenceWhy = "the send queue is well below the buffer size, so memory pressure may be the limit rather than the peer"
		}
		d.NextStep = "The connection is stuck, not cut: find why the receiver is slow (zero window: its application is not reading). Wait for POLLOUT instead of spinning, bound what the application queues, and size SO_SNDBUF for the bandwidth-delay product."
	default:
		d.Evidence.Text = fmt.Sprintf("%s on a %d-byte send: the local socket or device queue is full", events.ErrnoName(ev.Errno), ev.Bytes)
		d.Confidence = Medium
		d.ConfidenceWhy = "no TCP queue state for this socket"
		d.NextStep = "The sender outruns the local queue: pace the sends, raise SO_SNDBUF, and check the qdisc and device queue (tc -s qdisc) for drops."
	}
	if ev.Errno == eNOBUFS {
		d.NextStep = "ENOBUFS: a local queue (qdisc, device, or socket memory limits net.ipv4.tcp_mem/udp_mem) is full: check tc -s qdisc for drops, pace the sender, and raise the limits if memory allows."
	}
	return d, true
}

func refused(s *sockState, ev *events.Event, errno int32, rst bool) Diagnosis {
	d := base(s, ev, RuleRefused, "Connection refused or destination unreachable")
	d.Errno = errno
	d.Confidence = High
	switch {
	case rst:
		d.Name = "Connection refused"
		d.ConfidenceWhy = "the peer answered the SYN with a reset"
		d.Evidence.Text = fmt.Sprintf("a reset answered the SYN to %s: nothing listens on that port, or a firewall rejects with a TCP reset", s.dst)
		d.NextStep = "Check that the service listens on that address and port (ss -ltn on the server), that the client uses the right port, and whether a firewall rejects with tcp reset."
	case errno == eCONNREFUSED:
		d.Name = "Connection refused"
		d.ConfidenceWhy = "the kernel reported ECONNREFUSED (a reset to the SYN, or ICMP port unreachable)"
		d.Evidence.Text = fmt.Sprintf("ECONNREFUSED for %s in %s: a reset or an ICMP port-unreachable said no one listens there", s.dst, stateOr(ev.State, "an unconnected state"))
		d.NextStep = "Check that the service listens on that address and port, and whether a firewall rejects the traffic."
	default:
		d.Name = "Destination unreachable"
		d.ConfidenceWhy = "an ICMP error (or a missing route) ended the attempt before any retransmit chain"
		d.Evidence.Text = fmt.Sprintf("%s for %s in %s with no retransmit chain before it: an ICMP unreachable from a router or host on the path, or no route", events.ErrnoName(errno), s.dst, stateOr(ev.State, "an unconnected state"))
		d.NextStep = "Check routing to the destination (ip route get), that the host is up, and firewalls that reject with ICMP unreachable."
	}
	return d
}

// unreadConnectError: an attempt closed in SYN_SENT at once after an
// error report whose errno the application had read first (a woken
// connect() or poll() clears sk_err before the report is traced, which
// then says 0), with no reset from the peer, no SYN retransmitted and no
// packet dropped on this host but the purge of the SYN at the close: an
// ICMP error answered the SYN (IPv4 host unreachable ends a connect so).
func unreadConnectError(s *sockState, ev *events.Event) (Diagnosis, bool) {
	purgedOnly := s.drops.n == 0 || s.drops.n == 1 && s.drops.reason == "QUEUE_PURGE"
	if s.ended() || s.errReports == 0 || s.lastReport != 0 || s.resets > 0 || s.run.n > 0 || !purgedOnly {
		return Diagnosis{}, false
	}
	d := refused(s, ev, 0, false)
	d.Confidence = Medium
	d.ConfidenceWhy = "the application read the error before the tracer could (the report says errno 0), so which ICMP error it was is not known; no reset came, so it was no refusal by the peer's TCP"
	d.Evidence.Text = fmt.Sprintf("the attempt to %s ended in SYN_SENT at once, with an error reported on the socket, no reset and no SYN retransmitted: an ICMP error (host or network unreachable, administratively prohibited) answered the SYN", s.dst)
	return d, true
}

func stateOr(st uint8, none string) string {
	if st == 0 {
		return none
	}
	return events.StateName(st)
}

func localShutdown(s *sockState, ev *events.Event) Diagnosis {
	d := base(s, ev, RuleLocalShutdown, "Write after local close or shutdown")
	d.Evidence.Text = fmt.Sprintf("EPIPE on a %d-byte %s in %s, with no reset from the peer and no error report on the socket: the application wrote after its own shutdown(SHUT_WR) or close",
		ev.Bytes, orDash(ev.Syscall, "send"), stateOr(ev.State, "an unknown state"))
	switch {
	case ev.State == events.StateFinWait1 || ev.State == events.StateFinWait2 || ev.State == events.StateClosing ||
		ev.State == events.StateTimeWait || ev.State == events.StateLastAck:
		d.Confidence = High
		d.ConfidenceWhy = "the socket had sent its own FIN (state " + events.StateName(ev.State) + ")"
	case s.synMono != 0:
		d.Confidence = Medium
		d.ConfidenceWhy = "the whole connection was traced and no reset or error was seen, but its state does not show a local FIN"
	default:
		d.Confidence = Low
		d.ConfidenceWhy = "the connection was not traced from its start: a reset or timeout before the trace began would also leave EPIPE"
	}
	d.NextStep = "Find the code path that shuts down or closes the socket (or hands the fd to another owner) and still writes to it; check the connection pool's close and reuse logic."
	return d
}

func orDash(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func outsideStack(s *sockState, ev *events.Event) Diagnosis {
	d := base(s, ev, RuleOutsideStack, "Error from outside the TCP/IP stack")
	d.Evidence.Layer = ev.Layer
	d.Evidence.Syscall = ev.Syscall
	d.Evidence.Text = fmt.Sprintf("%s returned %s but the protocol's sendmsg never failed (layer syscall): the errno was made before the socket layer",
		orDash(ev.Syscall, "the send"), events.ErrnoString(ev.Errno))
	switch ev.Errno {
	case events.ECOMM, events.EPERM, events.EACCES, events.ENOSYS:
		d.Confidence = High
		d.ConfidenceWhy = "the TCP/IP stack does not return " + events.ErrnoName(ev.Errno) + " for sends on its own"
	default:
		d.Confidence = Medium
		d.ConfidenceWhy = "the stack can return " + events.ErrnoName(ev.Errno) + " too; a degraded stack-layer hook would also leave only the syscall layer"
	}
	d.NextStep = "This is not a network fault. Check the process's seccomp filter (Seccomp in /proc/PID/status; container runtime profiles), LSM denials (audit log, AppArmor, SELinux), and any sockmap or ULP layer attached to the socket."
	return d
}

// retryStorm describes a storm from its first connection to now: every
// connection and failure counted, with more appended to the evidence.
func retryStorm(k stormKey, c *stormState, now uint64, more string) Diagnosis {
	d := Diagnosis{
		Time: c.wall, Mono: now, Rule: RuleRetryStorm, Name: "Retry storm",
		PID: k.pid, Comm: c.comm, OwnerKnown: c.ownerKnown, Proto: c.proto, Dst: k.dst,
		Evidence: Evidence{SinceSend: -1, SinceRecv: -1, PeerDataAge: -1},
	}
	n := c.nAttempts
	w := time.Duration(0)
	if n > 1 && c.lastAttempt > c.first {
		w = time.Duration(c.lastAttempt - c.first)
	}
	d.Evidence.Connections = n
	d.Evidence.Failures = c.nFailures
	d.Evidence.Window = w
	if w > 0 {
		d.Evidence.Rate = float64(n-1) / w.Seconds()
	}
	// The text keeps the name as the process gave it, as the comm field
	// does; String escapes the whole text once, where it is printed.
	d.Evidence.Text = fmt.Sprintf("%s opened %d connections to %s within %s (%.1f/s); %d of them failed%s",
		cmp.Or(c.comm, "?")+"/"+strconv.FormatUint(uint64(k.pid), 10), n, k.dst, format.Duration(w), d.Evidence.Rate, c.nFailures, more)
	if d.Evidence.Rate >= 1 && 2*c.nFailures >= n {
		d.Confidence = High
		d.ConfidenceWhy = "most new connections failed and the process kept reconnecting at once"
	} else {
		d.Confidence = Medium
		d.ConfidenceWhy = "the reconnect rate is high, but fewer than half of the connections failed or the rate is below one per second"
	}
	d.NextStep = "Retry with exponential backoff and jitter, cap the retries, and add a circuit breaker so a failing destination is not hammered; fix the failure itself (see the per-connection diagnoses)."
	return d
}
