package diagnose

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

// Engine follows each socket's events and concludes a diagnosis when the
// connection fails. It is not safe for concurrent use.
type Engine struct {
	cfg   Config
	socks map[uint64]*sockState
	conns map[stormKey]*stormState
	// storming lists the process and destination pairs whose retry storm
	// is going on, concluded once it goes quiet: few at a time.
	storming []stormKey
	last     uint64 // newest mono seen, for evicting stale state
	swept    uint64 // mono of the last sweep of sockets and storms gone quiet
	// sysctls returns the sysctls recorded for a network namespace (by
	// inode), nil when there are none: see ReadSysctls.
	sysctls func(netns uint32) map[string]string
}

// New returns an engine with cfg's thresholds (zero fields: defaults).
func New(cfg Config) *Engine {
	return &Engine{
		cfg:   cfg.withDefaults(),
		socks: make(map[uint64]*sockState),
		conns: make(map[stormKey]*stormState),
	}
}

// ReadSysctls tells the engine where to read the sysctls recorded for a
// network namespace (by inode; nil when there are none): the setting
// that ended a timed-out connection is then the recorded one, checked
// against the time the kernel took, rather than guessed from that time.
// The pipeline hands it the ones a recording or a live session knows.
func (e *Engine) ReadSysctls(f func(netns uint32) map[string]string) { e.sysctls = f }

// maxKinds bounds Evidence.Kinds; a chain has at most one entry per kind.
const maxKinds = 8

// sockState is what is kept of one socket: aggregates, not the events, so
// a long-lived busy socket costs the same as a short one.
type sockState struct {
	cookie     uint64
	pid        uint32
	comm       string
	ownerKnown bool
	proto      uint8
	src, dst   netip.AddrPort

	firstMono, lastMono uint64
	activity            uint64 // mono of the last event other than a state change, before the current one
	curActivity         uint64
	synMono             uint64 // SYN_SENT seen: we know the connection from its start
	estMono             uint64 // ESTABLISHED seen
	sndISN              uint32 // this end's initial sequence number, when hasISN
	hasISN              bool
	closed              bool
	state               uint8

	events int
	kinds  []string

	resets       int
	sentResets   int // resets this socket sent itself
	errReports   int
	lastReport   int32
	timedOut     bool // an error report ended the connection (timeout, ICMP)
	concluded    []string
	failed       bool // a failure was seen, diagnosed or not
	countedStorm bool

	netns   uint32                               // the socket's network namespace, whose sysctls apply to it
	sysctls func(netns uint32) map[string]string // Engine.ReadSysctls

	run   retransRun
	nRTX  int    // all retransmit events on the socket
	segs  uint64 // the segments they carried
	drops localDrops
	// zeroWnd is when a send first met the peer's window at zero, and
	// snd_una then; 0 while the window is open.
	zeroWnd struct {
		mono uint64
		una  uint32
	}
}

// retransRun is the current loss episode: the retransmits of one stuck
// segment, with the probe of later data that may have come just before.
type retransRun struct {
	n          int
	seq        uint32
	startMono  uint64
	firstRTO   time.Duration
	firstSince time.Duration // since_recv at the first retransmit of the run
	firstSent  time.Duration // since_send at the first retransmit of the run
	firstSendQ uint32        // Send-Q at the first retransmit of the run
	firstMSS   uint32        // mss_cache then
	clockMono  uint64        // its first retransmission timeout: where the kernel's clock for giving up starts
	clockN     int           // retransmits from clockMono on (tail loss probes before it left out)
	quietSince uint64        // mono of the socket's last event before the run
	lastMono   uint64
	bytes      uint32
	minBytes   uint32
	full       int // segments at least the MSS long
	mssFirst   uint32
	mssLast    uint32
	mssChanged bool
	maxBackoff uint8
	maxRTO     time.Duration
	syn        bool // retransmits in SYN_SENT: the handshake itself
	lastEv     events.Event
}

type stormKey struct {
	pid uint32
	dst netip.AddrPort
}

type stormState struct {
	comm       string
	ownerKnown bool
	proto      uint8
	attempts   []uint64 // mono of recent connection attempts, oldest first
	failures   []uint64 // mono of recent failures
	lastMono   uint64
	wall       time.Time

	// The storm in progress, from the window that crossed the
	// thresholds: every connection and failure counted until it goes
	// quiet, however many (the marks above keep only the newest).
	on                   bool
	first, lastAttempt   uint64 // mono of its first and latest connection
	nAttempts, nFailures int
}

const maxStormMarks = 256

func (e *Engine) sock(ev *events.Event) *sockState {
	s := e.socks[ev.Cookie]
	if s == nil {
		if len(e.socks) >= e.cfg.MaxSockets {
			e.evict()
		}
		s = &sockState{cookie: ev.Cookie, firstMono: ev.Mono, sysctls: e.sysctls}
		e.socks[ev.Cookie] = s
	}
	if ev.Netns != 0 {
		s.netns = ev.Netns
	}
	if ev.OwnerKnown || !s.ownerKnown {
		s.pid, s.comm, s.ownerKnown = ev.PID, ev.Comm, ev.OwnerKnown
	}
	if ev.Protocol != 0 {
		s.proto = ev.Protocol
	}
	if ev.Dst.IsValid() {
		s.dst = ev.Dst
	}
	if ev.Src.IsValid() {
		s.src = ev.Src
	}
	s.lastMono = ev.Mono
	if ev.Kind != events.KindStateChange {
		s.activity, s.curActivity = s.curActivity, ev.Mono
	}
	s.events++
	k := ev.Kind.String()
	if len(s.kinds) < maxKinds && !slices.Contains(s.kinds, k) {
		s.kinds = append(s.kinds, k)
	}
	return s
}

// evict drops a quarter of the tracked sockets: closed ones first, then
// the longest quiet. Sorting on eviction keeps Observe cheap: it runs only
// once per MaxSockets/4 new sockets.
func (e *Engine) evict() {
	all := make([]*sockState, 0, len(e.socks))
	for _, s := range e.socks {
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b *sockState) int {
		if a.closed != b.closed {
			if a.closed {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.lastMono, b.lastMono)
	})
	for _, s := range all[:max(1, len(all)/4)] {
		delete(e.socks, s.cookie)
	}
	e.forgetStorms()
}

// quietFor is how long before the newest event mono was.
func (e *Engine) quietFor(mono uint64) time.Duration {
	if e.last <= mono {
		return 0
	}
	return time.Duration(e.last - mono)
}

// forgetStorms drops the retry-storm state of process and destination
// pairs quiet for longer than the storm rule looks back.
func (e *Engine) forgetStorms() {
	for k, c := range e.conns {
		if e.quietFor(c.lastMono) > 2*e.cfg.StormWindow {
			delete(e.conns, k)
		}
	}
}

// sweep forgets closed sockets quiet for ClosedLinger and storms gone
// quiet. It runs at most four times per ClosedLinger of the stream's
// time, so a long session's memory follows the sockets alive in it,
// not every socket it ever saw.
func (e *Engine) sweep() {
	if e.quietFor(e.swept) < e.cfg.ClosedLinger/4 {
		return
	}
	e.swept = e.last
	for c, s := range e.socks {
		if s.closed && e.quietFor(s.lastMono) > e.cfg.ClosedLinger {
			delete(e.socks, c)
		}
	}
	e.forgetStorms()
}

func (s *sockState) done(rule string) bool { return slices.Contains(s.concluded, rule) }

// Observe feeds one event and returns the diagnoses it concludes (most
// often none). Each failure is diagnosed once: the events that follow a
// concluded failure on the same socket (the ECONNRESET and then EPIPE
// sends after a reset, the send after a timeout) add nothing.
func (e *Engine) Observe(ev *events.Event) []Diagnosis {
	var out []Diagnosis
	if ev.Mono > e.last {
		e.last = ev.Mono
		out = e.quietStorms()
		e.sweep()
	}
	if ev.Cookie == 0 {
		return out
	}
	s := e.sock(ev)
	if ev.State != 0 {
		s.state = ev.State
	}
	switch ev.Kind {
	case events.KindStateChange:
		out = append(out, e.stateChange(s, ev)...)
	case events.KindRetransmit:
		s.retransmit(ev)
	case events.KindDrop:
		s.drops.add(ev)
	case events.KindReceiveReset:
		s.resets++
		out = append(out, e.conclude(s, ev)...)
	case events.KindSendReset:
		s.sentResets++
	case events.KindErrorReport:
		s.errReports++
		s.lastReport = ev.Errno
		out = append(out, e.conclude(s, ev)...)
	case events.KindSendError:
		out = append(out, e.conclude(s, ev)...)
	}
	return out
}

func (e *Engine) stateChange(s *sockState, ev *events.Event) []Diagnosis {
	var out []Diagnosis
	switch ev.State {
	case events.StateSynSent:
		if s.synMono == 0 {
			s.synMono = ev.Mono
			out = append(out, e.attempt(s, ev)...)
		}
	case events.StateEstablished:
		s.estMono = ev.Mono
		if ev.HasISN {
			s.sndISN, s.hasISN = ev.SndISN, true
		}
	case events.StateClose:
		s.closed = true
		// A socket closed in SYN_SENT never connected: a failed attempt
		// even when nothing else was said about it (a connect timeout
		// the application cut short).
		if ev.OldState == events.StateSynSent {
			if d, ok := unreadConnectError(s, ev); ok {
				s.concluded = append(s.concluded, d.Rule)
				out = append(out, d)
			}
			out = append(out, e.failure(s, ev)...)
		}
	}
	return out
}

func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }

func (s *sockState) retransmit(ev *events.Event) {
	s.nRTX++
	s.segs += events.EventSegs(ev)
	r := &s.run
	switch {
	case r.n > 0 && ev.Seq == r.seq && ev.State == s.run.lastEv.State:
	case r.n == 1 && seqBefore(ev.Seq, r.seq):
		// A tail loss probe retransmits the newest segment first; the
		// timeout that follows goes back to the oldest. One episode.
		*r = retransRun{startMono: r.startMono, firstRTO: r.firstRTO, firstSince: r.firstSince,
			firstSent: r.firstSent, firstSendQ: r.firstSendQ, firstMSS: r.firstMSS, quietSince: r.quietSince, minBytes: ^uint32(0)}
	default:
		*r = retransRun{startMono: ev.Mono, firstRTO: ev.RTO, firstSince: ev.SinceRecv,
			firstSent: ev.SinceSend, firstSendQ: ev.SendQ, firstMSS: ev.MSS, quietSince: s.activity, minBytes: ^uint32(0)}
	}
	r.n++
	if r.clockMono == 0 && ev.RetransKind != events.RetransTLP {
		r.clockMono = ev.Mono
	}
	if r.clockMono != 0 {
		r.clockN++
	}
	r.seq = ev.Seq
	r.lastMono = ev.Mono
	r.bytes = ev.Bytes
	r.minBytes = min(r.minBytes, ev.Bytes)
	if ev.MSS > 0 && ev.Bytes >= ev.MSS {
		r.full++
	}
	if r.mssFirst == 0 {
		r.mssFirst = ev.MSS
	} else if ev.MSS != r.mssLast {
		r.mssChanged = true
	}
	r.mssLast = ev.MSS
	r.maxBackoff = max(r.maxBackoff, ev.Backoff)
	r.maxRTO = max(r.maxRTO, ev.RTO)
	r.syn = ev.State == events.StateSynSent
	r.lastEv = *ev
}

// conclude is called for the events at which a connection can end in
// failure: a reset, an error report, a failed send.
func (e *Engine) conclude(s *sockState, ev *events.Event) []Diagnosis {
	var out []Diagnosis
	if d, ok := e.classify(s, ev); ok {
		s.concluded = append(s.concluded, d.Rule)
		out = append(out, d)
	}
	if isFailure(ev) {
		out = append(out, e.failure(s, ev)...)
	}
	return out
}

// isFailure says whether ev ends (or refuses) a connection, for the
// retry-storm count. Backpressure is not a failure of the connection.
func isFailure(ev *events.Event) bool {
	switch ev.Kind {
	case events.KindReceiveReset:
		return true
	case events.KindErrorReport:
		return ev.Errno != 0
	case events.KindSendError:
		return ev.Errno != events.EAGAIN && ev.Errno != events.ENOBUFS && ev.Errno != events.EINTR
	}
	return false
}

// stormOf returns the retry-storm state of one process and
// destination, making room for it when the table is full.
func (e *Engine) stormOf(k stormKey) *stormState {
	c := e.conns[k]
	if c == nil {
		if len(e.conns) >= e.cfg.MaxSockets {
			e.evict()
		}
		c = &stormState{}
		e.conns[k] = c
	}
	return c
}

// attempt counts a new connection for the retry-storm rule.
func (e *Engine) attempt(s *sockState, ev *events.Event) []Diagnosis {
	if !s.dst.IsValid() {
		return nil
	}
	k := stormKey{pid: s.pid, dst: s.dst}
	c := e.stormOf(k)
	c.note(s, ev)
	c.attempts = mark(c.attempts, ev.Mono, e.cfg.StormWindow)
	c.counted(ev.Mono)
	return e.storm(k, c)
}

// counted counts a connection of a storm in progress.
func (c *stormState) counted(mono uint64) {
	if !c.on {
		return
	}
	if c.nAttempts == 0 {
		c.first = mono
	}
	c.nAttempts++
	c.lastAttempt = mono
}

// note keeps what a storm's diagnosis names: the process and when it
// last did something.
func (c *stormState) note(s *sockState, ev *events.Event) {
	c.comm, c.lastMono, c.wall = s.comm, ev.Mono, ev.Time
	c.ownerKnown = c.ownerKnown || s.ownerKnown
	if s.proto != 0 {
		c.proto = s.proto
	}
}

// failure counts a failed connection for the retry-storm rule, once per
// socket.
func (e *Engine) failure(s *sockState, ev *events.Event) []Diagnosis {
	s.failed = true
	if s.countedStorm || !s.dst.IsValid() {
		return nil
	}
	s.countedStorm = true
	k := stormKey{pid: s.pid, dst: s.dst}
	// Connections are counted when their SYN_SENT is seen; without one
	// (no --pid filter) the failed socket is the attempt.
	c := e.stormOf(k)
	if s.synMono == 0 {
		c.attempts = mark(c.attempts, ev.Mono, e.cfg.StormWindow)
		c.counted(ev.Mono)
	}
	c.note(s, ev)
	c.failures = mark(c.failures, ev.Mono, e.cfg.StormWindow)
	if c.on {
		c.nFailures++
	}
	return e.storm(k, c)
}

// prune drops marks older than the window.
func prune(ms []uint64, now uint64, window time.Duration) []uint64 {
	i := 0
	for i < len(ms) && now > ms[i] && time.Duration(now-ms[i]) > window {
		i++
	}
	return ms[i:]
}

// mark appends now and drops marks older than the window.
func mark(ms []uint64, now uint64, window time.Duration) []uint64 {
	ms = append(prune(ms, now, window), now)
	if len(ms) > maxStormMarks {
		ms = ms[len(ms)-maxStormMarks:]
	}
	return ms
}

// storm starts counting a storm once the recent connections and
// failures cross the thresholds; it is concluded when it ends (see
// quietStorms), so that its diagnosis counts all of it, not the first
// StormMinConns connections. A storm that goes on longer than
// StormReport is concluded then, and counted afresh.
func (e *Engine) storm(k stormKey, c *stormState) []Diagnosis {
	now := c.lastMono
	if c.on {
		if c.nAttempts == 0 || time.Duration(now-c.first) < e.cfg.StormReport {
			return nil
		}
		d := retryStorm(k, c, now, "; it was still going on, and is reported every "+format.Duration(e.cfg.StormReport))
		c.nAttempts, c.nFailures = 0, 0
		return []Diagnosis{d}
	}
	c.attempts = prune(c.attempts, now, e.cfg.StormWindow)
	c.failures = prune(c.failures, now, e.cfg.StormWindow)
	if len(c.attempts) < e.cfg.StormMinConns || len(c.failures) < e.cfg.StormMinFailures {
		return nil
	}
	c.on = true
	c.first, c.lastAttempt = c.attempts[0], c.attempts[len(c.attempts)-1]
	c.nAttempts, c.nFailures = len(c.attempts), len(c.failures)
	e.storming = append(e.storming, k)
	return nil
}

// quietStorms concludes the storms that have gone quiet: no connection
// and no failure for StormWindow.
func (e *Engine) quietStorms() []Diagnosis {
	var out []Diagnosis
	keep := e.storming[:0]
	for _, k := range e.storming {
		c := e.conns[k]
		switch {
		case c == nil || !c.on:
		case e.quietFor(c.lastMono) > e.cfg.StormWindow:
			out = append(out, e.endStorm(k, c, ""))
		default:
			keep = append(keep, k)
		}
	}
	e.storming = keep
	return out
}

// endStorm concludes a storm and forgets its marks, so that another
// needs the thresholds again.
func (e *Engine) endStorm(k stormKey, c *stormState, more string) Diagnosis {
	d := retryStorm(k, c, c.lastMono, more)
	c.on = false
	c.attempts, c.failures = c.attempts[:0], c.failures[:0]
	return d
}

// Finish concludes what the end of the stream leaves open: connections
// still stuck retransmitting one segment, which have not failed yet only
// because the tracer stopped first.
func (e *Engine) Finish() []Diagnosis {
	var out []Diagnosis
	for _, k := range e.storming {
		if c := e.conns[k]; c != nil && c.on {
			out = append(out, e.endStorm(k, c, "; the trace ended "+format.Duration(e.quietFor(c.lastMono))+" after it last connected or failed"))
		}
	}
	e.storming = nil
	for _, s := range e.socks {
		if s.closed || len(s.concluded) > 0 {
			continue
		}
		if s.run.n < 3 || s.run.maxBackoff < 2 {
			if d, ok := stuckDropping(s, e.last); ok {
				s.concluded = append(s.concluded, d.Rule)
				out = append(out, d)
			}
			continue
		}
		if d, ok := stuck(s, e.last); ok {
			s.concluded = append(s.concluded, d.Rule)
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Diagnosis) int {
		return cmp.Or(cmp.Compare(a.Mono, b.Mono), cmp.Compare(a.Cookie, b.Cookie))
	})
	return out
}
