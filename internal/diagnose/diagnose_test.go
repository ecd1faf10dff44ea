package diagnose

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/events"
)

const ms_ = time.Millisecond

// chain builds one socket's events with times relative to its connect.
type chain struct {
	cookie uint64
	base   uint64
	evs    []events.Event
	// peerSegs is the data_segs_in of the events added from now on; -1
	// (unknown, as in an older recording) until a test sets it.
	peerSegs int64
}

func newChain(cookie uint64) *chain {
	c := &chain{cookie: cookie, base: uint64(1000 * time.Second), peerSegs: -1}
	c.add(0, events.Event{Kind: events.KindStateChange, State: events.StateSynSent, OldState: events.StateClose})
	return c
}

var dst = netip.MustParseAddrPort("198.18.1.2:443")

func (c *chain) add(at time.Duration, e events.Event) *chain {
	e.Mono = c.base + uint64(at)
	e.Time = time.Unix(0, int64(e.Mono))
	e.Cookie, e.PID, e.Comm, e.OwnerKnown = c.cookie, 42, "app", true
	e.Family, e.Protocol, e.Dst = unix.AF_INET, unix.IPPROTO_TCP, dst
	if e.State == 0 {
		e.State = events.StateEstablished
	}
	if e.SinceSend == 0 && e.SinceRecv == 0 {
		e.SinceSend, e.SinceRecv = -1, -1
	}
	e.DataSegsIn = c.peerSegs
	c.evs = append(c.evs, e)
	return c
}

func (c *chain) established() *chain {
	return c.add(ms_, events.Event{Kind: events.KindStateChange, State: events.StateEstablished, OldState: events.StateSynSent})
}

// retransmits adds n RTO retransmits of one segment starting at 'at'
// (its original send one RTO before), with doubling backoff.
func (c *chain) retransmits(at time.Duration, n int, seq, bytes, mss uint32, sinceRecv func(time.Duration) time.Duration) time.Duration {
	rto := 200 * ms_
	for i := range n {
		c.add(at, events.Event{Kind: events.KindRetransmit, Seq: seq, Bytes: bytes, MSS: mss, Backoff: uint8(i),
			RTO: rto, Retransmits: uint32(i + 1), SinceSend: rto, SinceRecv: sinceRecv(at)})
		at += 2 * rto
		rto *= 2
	}
	return at - rto/2
}

func rules(ds []Diagnosis) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Rule)
	}
	return strings.Join(s, ",")
}

func check(t *testing.T, evs []events.Event, want string) []Diagnosis {
	t.Helper()
	ds := FromEvents(evs)
	if got := rules(ds); got != want {
		for _, d := range ds {
			t.Log(d.String())
		}
		t.Fatalf("diagnoses %q, want %q", got, want)
	}
	for _, d := range ds {
		if d.Evidence.Text == "" || d.NextStep == "" || d.Confidence == "" || d.ConfidenceWhy == "" || d.Name == "" {
			t.Errorf("incomplete: %+v", d)
		}
		// Every diagnosis survives its JSON form.
		var back Diagnosis
		line := AppendJSON(nil, &d)
		if err := ParseJSON(line, &back); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if again := AppendJSON(nil, &back); !bytes.Equal(again, line) {
			t.Errorf("round trip:\n%s\n%s", line, again)
		}
		if k, err := events.PeekKind(line); err != nil || k != "diagnosis" {
			t.Errorf("kind %q %v", k, err)
		}
		t.Log(d.String())
	}
	return ds
}

func TestIdleReset(t *testing.T) {
	c := newChain(1).established()
	c.add(40*time.Second, events.Event{Kind: events.KindReceiveReset, SinceSend: ms_, SinceRecv: 39 * time.Second})
	c.add(40*time.Second+ms_, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ECONNRESET), State: events.StateClose})
	c.add(41*time.Second, events.Event{Kind: events.KindSendError, Errno: int32(unix.ECONNRESET), Layer: events.LayerBoth, State: events.StateClose})
	c.add(42*time.Second, events.Event{Kind: events.KindSendError, Errno: int32(unix.EPIPE), Layer: events.LayerBoth, State: events.StateClose})
	ds := check(t, c.evs, RuleIdleReset)
	if ds[0].Confidence != High || ds[0].Evidence.Idle != 39*time.Second {
		t.Errorf("%+v", ds[0])
	}
}

// A pooled HTTP connection: the response to request 1 came 2 ms after the
// handshake, then 3.5 s of silence, then request 2 was answered with a
// reset. lrcvtime alone cannot tell that answer from the handshake; the
// kernel's count of data segments received can.
func TestIdleResetAnswerRightAfterHandshake(t *testing.T) {
	node := func(peerSegs int64) Diagnosis {
		c := newChain(1).established()
		c.peerSegs = peerSegs
		c.add(3503*ms_, events.Event{Kind: events.KindReceiveReset, SinceSend: 0, SinceRecv: 3500 * ms_})
		c.add(3503*ms_, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ECONNRESET), State: events.StateClose, SinceSend: 0, SinceRecv: 3500 * ms_})
		return check(t, c.evs, RuleIdleReset)[0]
	}
	d := node(1)
	if d.Confidence != Medium || strings.Contains(d.ConfidenceWhy, "never sent data") || !strings.Contains(d.ConfidenceWhy, "3.5s") {
		t.Errorf("peer answered request 1: confidence %s, %q; want medium for a 3.5s silence", d.Confidence, d.ConfidenceWhy)
	}
	d = node(0)
	if d.Confidence != Low || !strings.Contains(d.ConfidenceWhy, "never sent data") {
		t.Errorf("peer sent nothing: confidence %s, %q; want low, saying so", d.Confidence, d.ConfidenceWhy)
	}
	// A recording without data_segs_in: the answer is indistinguishable
	// from the handshake, and the reason must not claim more than that.
	d = node(-1)
	if d.Confidence != Low || strings.Contains(d.ConfidenceWhy, "never sent data") || !strings.Contains(d.ConfidenceWhy, "if it sent any") {
		t.Errorf("unknown peer data: confidence %s, %q; want low, saying it is unknown", d.Confidence, d.ConfidenceWhy)
	}
	if !strings.Contains(d.String(), d.ConfidenceWhy) {
		t.Errorf("the text form lacks the confidence's reason: %s", d.String())
	}
	// The socket is named by the number report --conn takes.
	if !strings.Contains(d.String(), " cookie 1 ") {
		t.Errorf("the text form does not name the socket's cookie: %s", d.String())
	}
}

// A reset on a connection that was not idle is the peer's (or a device
// acting for it) abort, never an idle timeout.
func TestIdleResetNegatives(t *testing.T) {
	t.Run("busy connection", func(t *testing.T) {
		c := newChain(1).established()
		c.add(40*time.Second, events.Event{Kind: events.KindReceiveReset, SinceSend: ms_, SinceRecv: 100 * ms_})
		check(t, c.evs, RulePeerReset)
	})
	t.Run("retransmits during the silence", func(t *testing.T) {
		c := newChain(1).established()
		c.add(20*time.Second, events.Event{Kind: events.KindRetransmit, Seq: 5, Bytes: 100, MSS: 1448, SinceSend: 200 * ms_, SinceRecv: 10 * time.Second})
		c.add(40*time.Second, events.Event{Kind: events.KindReceiveReset, SinceSend: ms_, SinceRecv: 30 * time.Second})
		check(t, c.evs, RulePeerReset)
	})
}

func TestPeerReset(t *testing.T) {
	c := newChain(1).established()
	c.add(time.Second, events.Event{Kind: events.KindReceiveReset, SinceSend: 200 * ms_, SinceRecv: 200 * ms_})
	c.add(time.Second+ms_, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ECONNRESET), State: events.StateClose})
	c.add(time.Second+2*ms_, events.Event{Kind: events.KindSendError, Errno: int32(unix.ECONNRESET), Layer: events.LayerBoth, State: events.StateClose})
	c.add(time.Second+3*ms_, events.Event{Kind: events.KindSendError, Errno: int32(unix.EPIPE), Layer: events.LayerBoth, State: events.StateClose})
	ds := check(t, c.evs, RulePeerReset)
	if ds[0].Errno != int32(unix.ECONNRESET) || ds[0].Confidence != Medium {
		t.Errorf("%+v", ds[0])
	}
}

// A socket that resets the connection itself (close with SO_LINGER 0)
// reports ECONNRESET to its own error queue: no reset came from the peer.
func TestOwnResetIsNoPeerReset(t *testing.T) {
	c := newChain(1).established()
	c.add(time.Second, events.Event{Kind: events.KindStateChange, State: events.StateClose, OldState: events.StateEstablished})
	c.add(time.Second+ms_, events.Event{Kind: events.KindSendReset, State: events.StateClose, ResetReason: 14})
	c.add(time.Second+2*ms_, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ECONNRESET), State: events.StateClose})
	check(t, c.evs, "")
}

func TestIdleDrop(t *testing.T) {
	c := newChain(1).established()
	c.add(0, events.Event{Kind: events.KindStateChange}) // placeholder replaced below
	c.evs = c.evs[:len(c.evs)-1]
	start := 60 * time.Second
	end := c.retransmits(start, 5, 7, 100, 1448, func(at time.Duration) time.Duration { return 59*time.Second + (at - start) + 200*ms_ })
	c.add(end, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ETIMEDOUT), State: events.StateClose, SinceRecv: 70 * time.Second, SinceSend: 6 * time.Second})
	check(t, c.evs, RuleIdleReset)
}

func TestBlackHole(t *testing.T) {
	c := newChain(1).established()
	start := 500 * ms_
	end := c.retransmits(start, 4, 7, 100, 1448, func(at time.Duration) time.Duration { return at })
	c.add(end, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ETIMEDOUT), State: events.StateClose, SinceRecv: end, SinceSend: end})
	c.add(end+ms_, events.Event{Kind: events.KindSendError, Errno: int32(unix.ETIMEDOUT), Layer: events.LayerBoth, State: events.StateClose})
	ds := check(t, c.evs, RuleBlackHole)
	if d := ds[0]; d.Evidence.SameSeq != 4 || !strings.Contains(d.Evidence.Setting, "tcp_retries2=3") {
		t.Errorf("evidence %+v", d.Evidence)
	}
}

func TestBlackHoleSoftICMP(t *testing.T) {
	c := newChain(1).established()
	end := c.retransmits(ms_*300, 4, 7, 100, 1448, func(at time.Duration) time.Duration { return at })
	c.add(end, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.EHOSTUNREACH), State: events.StateClose, SinceRecv: end, SinceSend: end})
	ds := check(t, c.evs, RuleBlackHole)
	if !strings.Contains(ds[0].Evidence.Text, "soft error") {
		t.Errorf("%s", ds[0].Evidence.Text)
	}
}

func TestBlackHoleFullSizeNoPeerData(t *testing.T) {
	// Full-size segments, but nothing from the peer for a long time before
	// or during: a dead path, not an MTU problem.
	c := newChain(1).established()
	start := 10 * time.Second
	end := c.retransmits(start, 4, 7, 1448, 1448, func(at time.Duration) time.Duration { return at })
	c.add(end, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ETIMEDOUT), State: events.StateClose, SinceRecv: end, SinceSend: 3 * time.Second})
	check(t, c.evs, RuleBlackHole)
}

func TestPMTUBlackHole(t *testing.T) {
	c := newChain(1).established()
	start := 10 * time.Second
	peer := func(at time.Duration) time.Duration { return 100 * ms_ }
	end := c.retransmits(start, 4, 7, 1448, 1448, peer)
	c.add(end, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ETIMEDOUT), State: events.StateClose, SinceRecv: 100 * ms_, SinceSend: 3 * time.Second})
	ds := check(t, c.evs, RulePMTUBlackHole)
	if ds[0].Confidence != High {
		t.Errorf("%+v", ds[0])
	}
}

func TestPMTUNotWhenMSSChanges(t *testing.T) {
	c := newChain(1).established()
	c.retransmits(10*time.Second, 2, 7, 1448, 1448, func(time.Duration) time.Duration { return 100 * ms_ })
	end := c.retransmits(11*time.Second, 2, 7, 1448, 1448, func(time.Duration) time.Duration { return 100 * ms_ })
	c.evs[len(c.evs)-1].MSS, c.evs[len(c.evs)-1].Bytes = 1024, 1024
	c.add(end, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ETIMEDOUT), State: events.StateClose, SinceRecv: 100 * ms_, SinceSend: 3 * time.Second})
	check(t, c.evs, RuleBlackHole)
}

// midStream is an upload that the path (or a firewall at the peer)
// starts to drop after acked bytes were acknowledged: the connection's
// ISN is known from its handshake, each retransmit carries snd_una, and
// the peer sent data (one 100 Continue) at peerAt only. sendQ is the
// Send-Q when the loss began.
func midStream(acked uint32, peerAt, start time.Duration, sendQ uint32) *chain {
	const isn = 4000000000 // sequence space wraps past it
	c := newChain(1)
	c.add(ms_, events.Event{Kind: events.KindStateChange, State: events.StateEstablished, OldState: events.StateSynSent,
		SndISN: isn, RcvISN: 77, HasISN: true, SndUna: isn + 1})
	c.peerSegs = 1
	seq := uint32(isn) + 1 + acked
	end := c.retransmits(start, 4, seq, 1448, 1448, func(at time.Duration) time.Duration { return at - peerAt })
	for i := range c.evs {
		if c.evs[i].Kind == events.KindRetransmit {
			c.evs[i].SndUna, c.evs[i].SendQ, c.evs[i].SinceSend = seq, sendQ, 0
		}
	}
	c.add(end, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ETIMEDOUT), State: events.StateClose,
		SinceRecv: end - peerAt, SinceSend: 3 * time.Second, SndUna: seq, SendQ: sendQ})
	return c
}

// Full-size segments went through for half a second (327,680 bytes,
// 226 segments' worth, acknowledged) before the same full-size segment
// was retransmitted until the kernel gave up: the path carried full-size
// packets, so this is a black hole, not a path MTU black hole.
func TestFullSizeAckedIsNotPMTU(t *testing.T) {
	c := midStream(327680, ms_, 500*ms_, 65536)
	ds := check(t, c.evs, RuleBlackHole)
	if !strings.Contains(ds[0].Evidence.Text, "327680 bytes had been acknowledged") {
		t.Errorf("evidence %q does not say that full-size segments had crossed", ds[0].Evidence.Text)
	}
	// The same, a few small requests into the connection: its first
	// full-size segment is the one stuck.
	c = midStream(300, ms_, 500*ms_, 1448)
	ds = check(t, c.evs, RulePMTUBlackHole)
	if ds[0].Confidence != Medium {
		t.Errorf("%+v", ds[0])
	}
	// The peer sent no data at all: the quiet since the handshake is no
	// answer from the peer.
	c = midStream(300, ms_, 500*ms_, 1448)
	for i := range c.evs {
		c.evs[i].DataSegsIn = 0
	}
	ds = check(t, c.evs, RulePMTUBlackHole)
	if strings.Contains(ds[0].Evidence.Text, "answered") || !strings.Contains(ds[0].Evidence.Text, "after the handshake") {
		t.Errorf("evidence %q: the peer never sent data", ds[0].Evidence.Text)
	}
}

// An upload whose peer last sent data 3 s before the loss (its 100
// Continue) is not idle while it has 64 kB unacknowledged or queued: a
// black hole, which says why the silence was no idle period. With only
// a request's worth queued, the same silence is an idle drop.
func TestSendingIsNotIdle(t *testing.T) {
	c := midStream(600000, ms_, 3*time.Second, 65536)
	ds := check(t, c.evs, RuleBlackHole)
	if ds[0].Confidence != High || !strings.Contains(ds[0].Evidence.Text, "was not idle") {
		t.Errorf("%s", ds[0].String())
	}
	c = midStream(600000, ms_, 3*time.Second, 100)
	check(t, c.evs, RuleIdleReset)
}

// A reset that ends an upload is the peer's (or a device's) doing, not
// a forgotten idle flow, however long ago the peer last sent data.
func TestResetWhileSendingIsNotIdle(t *testing.T) {
	c := newChain(1).established()
	c.peerSegs = 1
	c.add(40*time.Second, events.Event{Kind: events.KindReceiveReset, SinceSend: 0, SinceRecv: 39 * time.Second, SendQ: 65536, MSS: 1448})
	ds := check(t, c.evs, RulePeerReset)
	if !strings.Contains(ds[0].Evidence.Text, "65536 bytes were unacknowledged") {
		t.Errorf("%s", ds[0].Evidence.Text)
	}
	c = newChain(2).established()
	c.peerSegs = 1
	c.add(40*time.Second, events.Event{Kind: events.KindReceiveReset, SinceSend: 0, SinceRecv: 39 * time.Second, SendQ: 100, MSS: 1448})
	check(t, c.evs, RuleIdleReset)
}

// measuredTimeout is a connection black-holed as the lab measured it on
// 6.18 with tcp_retries2=3: four RTO retransmissions of the stuck segment
// (RTO 204 ms doubling, each timer firing a little late) after a tail
// loss probe, then ETIMEDOUT 6.34 s after the first of them.
func measuredTimeout(netns uint32) []events.Event {
	c := newChain(1).established()
	c.add(2*time.Second-200*ms_, events.Event{Kind: events.KindRetransmit, Seq: 9000, Bytes: 100, MSS: 1448, RTO: 204 * ms_,
		RetransKind: events.RetransTLP, SinceSend: 0, SinceRecv: 200 * ms_})
	for i, at := range []time.Duration{0, 416 * ms_, 1248 * ms_, 2916 * ms_} {
		c.add(2*time.Second+at, events.Event{Kind: events.KindRetransmit, Seq: 7, Bytes: 100, MSS: 1448, RTO: (204 * ms_) << i,
			Backoff: uint8(i), Retransmits: uint32(i + 1), RetransKind: events.RetransRTO, SinceSend: 0, SinceRecv: 200*ms_ + at})
	}
	c.add(2*time.Second+6340*ms_, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ETIMEDOUT), State: events.StateClose})
	for i := range c.evs {
		c.evs[i].Netns = netns
	}
	return c.evs
}

func settingWith(t *testing.T, evs []events.Event, sysctls map[uint32]map[string]string) Diagnosis {
	t.Helper()
	e := New(Config{})
	e.ReadSysctls(func(ns uint32) map[string]string { return sysctls[ns] })
	var ds []Diagnosis
	for i := range evs {
		ds = append(ds, e.Observe(&evs[i])...)
	}
	ds = append(ds, e.Finish()...)
	if len(ds) != 1 || ds[0].Rule != RuleBlackHole {
		t.Fatalf("diagnoses %q, want one black-hole", rules(ds))
	}
	t.Log(ds[0].Evidence.Setting)
	return ds[0]
}

// The setting that ended a timed-out connection is the one recorded for
// its network namespace, checked against what the kernel does with it
// (it retransmitted four times and gave up 6.34 s after the first
// retransmission with tcp_retries2=3, whose textbook timeout is 3 s),
// and a recorded value the time does not fit is said not to be it.
func TestTimeoutSettingAsRecorded(t *testing.T) {
	const ns = 4026532174
	evs := measuredTimeout(ns)
	d := settingWith(t, evs, map[uint32]map[string]string{ns: {"net.ipv4.tcp_retries2": "3"}})
	if want := "net.ipv4.tcp_retries2=3, as recorded for net:[4026532174]"; !strings.HasPrefix(d.Evidence.Setting, want) ||
		!strings.Contains(d.Evidence.Setting, "6.34s after it, after 4 retransmissions") {
		t.Errorf("setting %q, want it to start %q and give the kernel's 4 retransmissions over 6.34s", d.Evidence.Setting, want)
	}
	// A tail loss probe of the stuck segment itself does not start the
	// kernel's clock, nor count among its retransmissions.
	same := measuredTimeout(ns)
	for i := range same {
		if same[i].RetransKind == events.RetransTLP {
			same[i].Seq = 7
		}
	}
	d = settingWith(t, same, map[uint32]map[string]string{ns: {"net.ipv4.tcp_retries2": "3"}})
	if !strings.Contains(d.Evidence.Setting, "6.34s after it, after 4 retransmissions") {
		t.Errorf("setting %q, want the 4 RTO retransmissions over 6.34s", d.Evidence.Setting)
	}
	// The default, 15, would have gone on for 924.6 s: something else
	// (TCP_USER_TIMEOUT) ended it.
	d = settingWith(t, evs, map[uint32]map[string]string{ns: {"net.ipv4.tcp_retries2": "15"}})
	if !strings.HasPrefix(d.Evidence.Setting, "not the recorded net.ipv4.tcp_retries2=15") || !strings.Contains(d.Evidence.Setting, "TCP_USER_TIMEOUT of about 6.34s") {
		t.Errorf("setting %q", d.Evidence.Setting)
	}
	// 2 (1.4 s) would have given up at the timeout 2.9 s after the first
	// retransmission, where the kernel retransmitted instead.
	d = settingWith(t, evs, map[uint32]map[string]string{ns: {"net.ipv4.tcp_retries2": "2"}})
	if !strings.HasPrefix(d.Evidence.Setting, "not the recorded net.ipv4.tcp_retries2=2") || !strings.Contains(d.Evidence.Setting, "still retransmitting 2.92s after it") {
		t.Errorf("setting %q", d.Evidence.Setting)
	}
	// Not recorded (another namespace's values only): the values that
	// give this time, as the kernel applies them.
	d = settingWith(t, evs, map[uint32]map[string]string{ns + 1: {"net.ipv4.tcp_retries2": "3"}})
	if !strings.HasPrefix(d.Evidence.Setting, "net.ipv4.tcp_retries2=3 or 4 (its value in this socket's namespace is not known") {
		t.Errorf("setting %q", d.Evidence.Setting)
	}
	// The time to failure counts from the probe, the first retransmission.
	if ttf, ok := TimeToFailure(&d); !ok || ttf != 6540*ms_ {
		t.Errorf("time to failure %v %v, want 6.54s from the tail loss probe", ttf, ok)
	}
}

// A connect to a host that drops SYNs, as measured with tcp_syn_retries=2:
// the SYN, five retransmissions a second apart (the first ones linear),
// then ETIMEDOUT 7.12 s after the SYN.
func TestSynTimeoutSettingAsRecorded(t *testing.T) {
	const ns = 99
	c := newChain(1)
	for i := range 5 {
		c.add(time.Duration(i+1)*time.Second+ms_*time.Duration(3*i), events.Event{Kind: events.KindRetransmit, State: events.StateSynSent,
			RTO: time.Second, RetransKind: events.RetransSYN, Retransmits: uint32(i + 1)})
	}
	c.add(7120*ms_, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ETIMEDOUT), State: events.StateClose})
	for i := range c.evs {
		c.evs[i].Netns = ns
	}
	d := settingWith(t, c.evs, map[uint32]map[string]string{ns: {"net.ipv4.tcp_syn_retries": "2"}})
	if want := "net.ipv4.tcp_syn_retries=2, as recorded for net:[99]"; !strings.HasPrefix(d.Evidence.Setting, want) ||
		!strings.Contains(d.Evidence.Setting, "at least 7s after the SYN was first sent, here 7.12s after it, after 5 retransmissions") {
		t.Errorf("setting %q", d.Evidence.Setting)
	}
	d = settingWith(t, c.evs, nil)
	if !strings.HasPrefix(d.Evidence.Setting, "net.ipv4.tcp_syn_retries=2 (its value in this socket's namespace is not known") {
		t.Errorf("setting %q", d.Evidence.Setting)
	}
}

// A healthy bulk transfer loses a few segments, each retransmitted once
// and then acknowledged: no failure, nothing diagnosed, at the end either.
func TestHealthyBulkWithDrops(t *testing.T) {
	c := newChain(1).established()
	for i := range 20 {
		c.add(time.Duration(i+1)*100*ms_, events.Event{Kind: events.KindRetransmit, Seq: uint32(i) * 1448 * 50,
			Bytes: 1448, MSS: 1448, RTO: 204 * ms_, SinceSend: 0, SinceRecv: ms_})
	}
	c.add(3*time.Second, events.Event{Kind: events.KindStateChange, State: events.StateFinWait1, OldState: events.StateEstablished})
	check(t, c.evs, "")
}

func TestStuckAtEnd(t *testing.T) {
	c := newChain(1).established()
	c.retransmits(time.Second, 5, 7, 100, 1448, func(at time.Duration) time.Duration { return at })
	ds := check(t, c.evs, RuleBlackHole)
	if ds[0].Errno != 0 || ds[0].Confidence != Medium {
		t.Errorf("%+v", ds[0])
	}
}

func TestBackpressure(t *testing.T) {
	c := newChain(1).established()
	for i := range 3 {
		c.add(time.Second+time.Duration(i)*600*ms_, events.Event{Kind: events.KindSendError, Errno: int32(unix.EAGAIN), Layer: events.LayerBoth,
			Bytes: 16384, SendQ: 160000, SndBuf: 131072, SndWnd: 0, SndUna: 5000})
	}
	ds := check(t, c.evs, RuleBackpressure)
	if ds[0].Confidence != High || !strings.Contains(ds[0].Evidence.Text, "zero window") {
		t.Errorf("%+v", ds[0])
	}
}

// A full buffer with the peer's window open is no stuck reader, and is
// not named: behind a segment retransmitted by timeout it is loss (a
// net/http upload into a black hole, corpus case
// black-hole-remote-firewall_rate-upload_go_mid_v6, got EAGAIN from Go's
// non-blocking write before its connection timed out, and was called
// backpressure at high confidence), otherwise a sender faster than the
// path (iperf3's first writes, pmtu-black-hole_upload_iperf3_mid_v4). The
// same connection's EAGAIN once the window is zero is.
func TestBackpressureOpenWindow(t *testing.T) {
	c := newChain(1).established()
	c.add(time.Second, events.Event{Kind: events.KindSendError, Errno: int32(unix.EAGAIN), Layer: events.LayerBoth,
		Bytes: 1864, SendQ: 100584, SndBuf: 69120, SndWnd: 98304, Retransmits: 1, Backoff: 1})
	c.add(2*time.Second, events.Event{Kind: events.KindSendError, Errno: int32(unix.EAGAIN), Layer: events.LayerBoth,
		Bytes: 51432, SendQ: 79640, SndBuf: 69120, SndWnd: 65536})
	if ds := FromEvents(c.evs); len(ds) != 0 {
		t.Errorf("open window: %+v", ds)
	}
	// A zero window for a moment, then acknowledgements (iperf3's server
	// falling behind on a loaded machine): no stuck reader.
	for i, una := range []uint32{7000, 7000, 9000} {
		c.add(3*time.Second+time.Duration(i)*600*ms_, events.Event{Kind: events.KindSendError, Errno: int32(unix.EAGAIN), Layer: events.LayerBoth,
			Bytes: 16384, SendQ: 160000, SndBuf: 131072, SndWnd: 0, SndUna: una})
	}
	if ds := FromEvents(c.evs); len(ds) != 0 {
		t.Errorf("a zero window that moved: %+v", ds)
	}
	c.add(5500*ms_, events.Event{Kind: events.KindSendError, Errno: int32(unix.EAGAIN), Layer: events.LayerBoth,
		Bytes: 16384, SendQ: 160000, SndBuf: 131072, SndWnd: 0, SndUna: 9000})
	ds := check(t, c.evs, RuleBackpressure)
	if ds[0].Confidence != High || !strings.Contains(ds[0].Evidence.Text, "nothing acknowledged") {
		t.Errorf("%+v", ds[0])
	}
}

// Keepalive probes unanswered on an idle connection end it with
// ETIMEDOUT and no retransmit (corpus cases keepalive-expiry_*): the
// kernel sends a reset and reports the timeout with nothing queued.
func TestKeepaliveExpiry(t *testing.T) {
	c := newChain(1).established()
	c.add(4*time.Second, events.Event{Kind: events.KindSendReset, SinceSend: 4 * time.Second, SinceRecv: 4 * time.Second})
	c.add(4*time.Second, events.Event{Kind: events.KindStateChange, State: events.StateClose, OldState: events.StateEstablished,
		SinceSend: 4 * time.Second, SinceRecv: 4 * time.Second})
	c.add(4*time.Second, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ETIMEDOUT), State: events.StateClose,
		SinceSend: 4 * time.Second, SinceRecv: 4 * time.Second})
	ds := check(t, c.evs, RuleBlackHole)
	if ds[0].Confidence != Medium || !strings.Contains(ds[0].Evidence.Text, "keepalive probes went unanswered") {
		t.Errorf("%+v", ds[0])
	}
	// With data queued it is not keepalive: still unsure.
	q := newChain(2).established()
	q.add(4*time.Second, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ETIMEDOUT), State: events.StateClose, SendQ: 100})
	if ds := check(t, q.evs, RuleBlackHole); ds[0].Confidence != Low {
		t.Errorf("%+v", ds[0])
	}
}

// The ICMP answers to a SYN the corpus found unnamed or misnamed
// (icmp-unreachable_reqresp_*_handshake): over IPv4 the connect ends at
// once and curl reads the errno before the report is traced (errno 0);
// over IPv6 the SYN is retransmitted once and EHOSTUNREACH is reported
// after the close.
func TestUnreachableSYN(t *testing.T) {
	v4 := newChain(1)
	v4.add(ms_, events.Event{Kind: events.KindErrorReport, State: events.StateSynSent})
	v4.add(2*ms_, events.Event{Kind: events.KindStateChange, State: events.StateClose, OldState: events.StateSynSent})
	v4.add(3*ms_, events.Event{Kind: events.KindDrop, State: events.StateClose, DropReason: "QUEUE_PURGE", DropDir: events.DropOut})
	ds := check(t, v4.evs, RuleRefused)
	if ds[0].Confidence != Medium || ds[0].Name != "Destination unreachable" {
		t.Errorf("%+v", ds[0])
	}
	v6 := newChain(2)
	v6.add(time.Second, events.Event{Kind: events.KindRetransmit, State: events.StateSynSent, RetransKind: events.RetransSYN})
	v6.add(time.Second+ms_, events.Event{Kind: events.KindStateChange, State: events.StateClose, OldState: events.StateSynSent})
	v6.add(time.Second+2*ms_, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.EHOSTUNREACH), State: events.StateClose})
	ds = check(t, v6.evs, RuleRefused)
	if ds[0].Confidence != High {
		t.Errorf("%+v", ds[0])
	}
	// A connect the application cut short reports nothing: no diagnosis.
	cut := newChain(3)
	cut.add(ms_, events.Event{Kind: events.KindStateChange, State: events.StateClose, OldState: events.StateSynSent})
	if ds := FromEvents(cut.evs); len(ds) != 0 {
		t.Errorf("a connect closed by the application: %+v", ds)
	}
}

func TestLocalShutdown(t *testing.T) {
	c := newChain(1).established()
	c.add(time.Second, events.Event{Kind: events.KindStateChange, State: events.StateFinWait1, OldState: events.StateEstablished})
	c.add(time.Second, events.Event{Kind: events.KindSendError, Errno: int32(unix.EPIPE), Layer: events.LayerBoth, State: events.StateFinWait1})
	ds := check(t, c.evs, RuleLocalShutdown)
	if ds[0].Confidence != High {
		t.Errorf("%+v", ds[0])
	}
	// EPIPE after a reset is the reset's failure, not a local shutdown.
	r := newChain(2).established()
	r.add(time.Second, events.Event{Kind: events.KindReceiveReset, SinceSend: ms_, SinceRecv: ms_})
	r.add(2*time.Second, events.Event{Kind: events.KindSendError, Errno: int32(unix.EPIPE), Layer: events.LayerBoth, State: events.StateClose})
	check(t, r.evs, RulePeerReset)
}

func TestOutsideStack(t *testing.T) {
	c := newChain(1).established()
	c.add(time.Second, events.Event{Kind: events.KindSendError, Errno: int32(unix.ECOMM), Layer: events.LayerSyscall, Syscall: "sendto"})
	check(t, c.evs, RuleOutsideStack)
}

func TestRetryStorm(t *testing.T) {
	var evs []events.Event
	for i := range 20 {
		c := newChain(uint64(i + 1))
		c.add(ms_, events.Event{Kind: events.KindReceiveReset, State: events.StateSynSent})
		for j := range c.evs {
			c.evs[j].Mono += uint64(time.Duration(i) * 50 * ms_)
		}
		evs = append(evs, c.evs...)
	}
	ds := FromEvents(evs)
	storms := 0
	for _, d := range ds {
		if d.Rule == RuleRetryStorm {
			storms++
			if d.Evidence.Rate < 10 || d.Evidence.Connections < 8 {
				t.Errorf("%+v", d.Evidence)
			}
			t.Log(d.String())
		}
	}
	if storms != 1 {
		t.Errorf("%d storms: %s", storms, rules(ds))
	}
}

// refusedStorm is n connections of one process, each refused by a reset
// to its SYN, every gap apart, from the chain's base time.
func refusedStorm(n int, gap time.Duration) []events.Event {
	var evs []events.Event
	for i := range n {
		c := newChain(uint64(i + 1))
		c.add(100*time.Microsecond, events.Event{Kind: events.KindReceiveReset, State: events.StateSynSent})
		c.add(110*time.Microsecond, events.Event{Kind: events.KindErrorReport, Errno: int32(unix.ECONNREFUSED), State: events.StateClose})
		for j := range c.evs {
			c.evs[j].Mono += uint64(time.Duration(i) * gap)
		}
		evs = append(evs, c.evs...)
	}
	return evs
}

// 3,000 refused connects in 1.5 s are one storm of 3,000 connections,
// all failed: its evidence counts every one of them, not the eight that
// first crossed the threshold.
func TestRetryStormCountsAll(t *testing.T) {
	const n = 3000
	gap := 500 * time.Microsecond
	evs := refusedStorm(n, gap)
	last := evs[len(evs)-1].Mono
	// Later traffic of another process, after the storm went quiet.
	later := newChain(n + 1)
	later.base = last + uint64(30*time.Second)
	later.add(0, events.Event{Kind: events.KindStateChange, State: events.StateSynSent})
	for i := range later.evs {
		later.evs[i].PID = 7
	}
	for _, finish := range []bool{false, true} {
		all := evs
		if !finish {
			all = append(append([]events.Event(nil), evs...), later.evs...)
		}
		e := New(Config{})
		var storms []Diagnosis
		for i := range all {
			for _, d := range e.Observe(&all[i]) {
				if d.Rule == RuleRetryStorm {
					if finish {
						t.Fatalf("storm concluded while it went on: %s", d.String())
					}
					storms = append(storms, d)
				}
			}
		}
		for _, d := range e.Finish() {
			if d.Rule == RuleRetryStorm {
				storms = append(storms, d)
			}
		}
		if len(storms) != 1 {
			t.Fatalf("finish %v: %d storm diagnoses, want 1", finish, len(storms))
		}
		d := storms[0]
		t.Log(d.String())
		ev := d.Evidence
		if ev.Connections != n || ev.Failures != n {
			t.Errorf("finish %v: %d connections, %d failures; the process opened %d, all refused", finish, ev.Connections, ev.Failures, n)
		}
		if want := time.Duration(n-1) * gap; ev.Window != want {
			t.Errorf("finish %v: window %v, want %v", finish, ev.Window, want)
		}
		if !strings.Contains(ev.Text, "opened 3000 connections") {
			t.Errorf("finish %v: evidence %q", finish, ev.Text)
		}
		if d.Mono < last-uint64(time.Millisecond) || d.Mono > last {
			t.Errorf("finish %v: concluded at %d, the storm's last event was at %d", finish, d.Mono, last)
		}
	}
}

// A storm that never stops is reported every StormReport, each report
// counting its own period.
func TestRetryStormReportedWhileItGoesOn(t *testing.T) {
	evs := refusedStorm(400, 50*time.Millisecond) // 20 s
	e := New(Config{StormReport: 5 * time.Second})
	var storms []Diagnosis
	for i := range evs {
		for _, d := range e.Observe(&evs[i]) {
			if d.Rule == RuleRetryStorm {
				storms = append(storms, d)
			}
		}
	}
	for _, d := range e.Finish() {
		if d.Rule == RuleRetryStorm {
			storms = append(storms, d)
		}
	}
	total := 0
	for _, d := range storms {
		total += d.Evidence.Connections
		t.Log(d.String())
	}
	if len(storms) < 4 || len(storms) > 5 || total != 400 {
		t.Errorf("%d storm diagnoses counting %d connections; want one per 5 s of a 20 s storm, counting all 400", len(storms), total)
	}
}

func TestBoundedSockets(t *testing.T) {
	e := New(Config{MaxSockets: 100})
	for i := range 10000 {
		c := newChain(uint64(i + 1))
		for _, ev := range c.evs {
			e.Observe(&ev)
		}
	}
	if len(e.socks) > 100 {
		t.Errorf("%d sockets tracked", len(e.socks))
	}
}

func TestRenderSummary(t *testing.T) {
	c := newChain(1).established()
	c.add(time.Second, events.Event{Kind: events.KindSendError, Errno: int32(unix.ECOMM), Layer: events.LayerSyscall, Syscall: "sendto"})
	var b bytes.Buffer
	if err := RenderSummary(&b, FromEvents(c.evs)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "outside-stack") || !strings.Contains(b.String(), "app/42") {
		t.Errorf("%s", b.String())
	}
	t.Log(b.String())
	b.Reset()
	if err := RenderSummary(&b, nil); err != nil || b.Len() != 0 {
		t.Errorf("empty: %q %v", b.String(), err)
	}
}

// A host's short-lived connections come and go while one pooled
// connection idles; the engine forgets the closed ones, and still knows
// the idle one when the middlebox resets it.
func TestForgetsClosedSockets(t *testing.T) {
	e := New(Config{ClosedLinger: time.Second, StormWindow: time.Second})
	pooled := newChain(1).established()
	var ds []Diagnosis
	for _, ev := range pooled.evs {
		ds = append(ds, e.Observe(&ev)...)
	}
	const n = 10000
	for i := range n {
		c := newChain(uint64(i + 2))
		c.base += uint64(time.Duration(i) * 10 * ms_)
		c.established()
		c.add(5*ms_, events.Event{Kind: events.KindStateChange, State: events.StateClose, OldState: events.StateEstablished})
		for j := range c.evs {
			c.evs[j].PID = uint32(1000 + i)
			ds = append(ds, e.Observe(&c.evs[j])...)
		}
		if most := 2*time.Second/(10*ms_) + 10; len(e.socks) > int(most) {
			t.Fatalf("after %d connections, %d sockets tracked (want at most %d)", i+1, len(e.socks), most)
		}
		if most := 3*time.Second/(10*ms_) + 10; len(e.conns) > int(most) {
			t.Fatalf("after %d connections, %d storm entries kept (want at most %d)", i+1, len(e.conns), most)
		}
	}
	idle := time.Duration(n) * 10 * ms_
	pooled.add(idle+time.Second, events.Event{Kind: events.KindReceiveReset, SinceSend: ms_, SinceRecv: idle})
	for _, ev := range pooled.evs[len(pooled.evs)-1:] {
		ds = append(ds, e.Observe(&ev)...)
	}
	if got := rules(ds); got != RuleIdleReset {
		t.Fatalf("diagnoses %q, want %q", got, RuleIdleReset)
	}
	if ds[0].Evidence.Idle != idle {
		t.Errorf("idle %s, want %s", ds[0].Evidence.Idle, idle)
	}
}
