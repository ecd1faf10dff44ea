// Package diagnose names the likely cause of a failed connection from the
// chain of events sendtrace saw on its socket: an idle flow forgotten by a
// middlebox, a black-holed path, a path MTU black hole, backpressure, a
// refused or unreachable peer, a local shutdown, an error injected from
// outside the TCP/IP stack, or a retry storm.
//
// It reads only events.Event, so it works the same on a live stream and on
// a recording.
package diagnose

import (
	"net/netip"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

// Rule ids, stable across versions: they are what scripts match on.
const (
	RuleIdleReset     = "idle-reset"
	RulePeerReset     = "peer-reset"
	RuleBlackHole     = "black-hole"
	RulePMTUBlackHole = "pmtu-black-hole"
	RuleBackpressure  = "backpressure"
	RuleRefused       = "refused-unreachable"
	RuleLocalShutdown = "local-shutdown"
	RuleOutsideStack  = "outside-stack"
	RuleRetryStorm    = "retry-storm"
	RuleLocalDrop     = "local-drop"
)

// Rules lists every rule id in the order the summary shows them.
var Rules = []string{
	RuleIdleReset, RulePeerReset, RuleBlackHole, RulePMTUBlackHole, RuleLocalDrop, RuleBackpressure,
	RuleRefused, RuleLocalShutdown, RuleOutsideStack, RuleRetryStorm,
}

// Confidence levels.
const (
	High   = "high"
	Medium = "medium"
	Low    = "low"
)

// Diagnosis is one named cause of one failure (or, for a retry storm, of
// a burst of failures by one process towards one destination).
type Diagnosis struct {
	Time time.Time // wall clock of the event that concluded it
	Mono uint64    // its CLOCK_MONOTONIC ns

	Rule string // one of the Rule* ids
	Name string // short human name

	Cookie     uint64 // 0 for a retry storm, which spans many sockets
	PID        uint32
	Comm       string
	OwnerKnown bool
	Proto      uint8
	Src        netip.AddrPort
	Dst        netip.AddrPort
	Errno      int32 // the errno the failure ended in; 0 when none reached the application

	Confidence    string // High, Medium or Low
	ConfidenceWhy string

	Evidence Evidence
	NextStep string
}

// Evidence is what the diagnosis rests on. Zero fields did not apply.
type Evidence struct {
	// Text is one sentence a person reads: counts, spans, idle times and
	// the settings they imply.
	Text string

	Events       int           // events of the chain that were considered
	Kinds        []string      // their kinds, in order of first appearance
	Retransmits  int           // retransmit events on the socket
	RetransSegs  uint64        // the segments they carried, as TcpRetransSegs counts
	SameSeq      int           // of those, retransmits of the stuck segment
	SegmentBytes uint32        // length of the stuck segment
	MSS          uint32        // mss_cache while it was stuck
	MSSChanged   bool          // the MSS changed during the episode (PMTU discovery or probing acted)
	MaxBackoff   uint8         // highest icsk_backoff seen
	MaxRTO       time.Duration // highest RTO seen
	Span         time.Duration // from the first retransmission of the stuck data to the conclusion
	Idle         time.Duration // time without data from the peer before the failure
	SinceSend    time.Duration // at the conclusion; -1 when unknown
	SinceRecv    time.Duration // at the conclusion; -1 when unknown
	PeerDataAge  time.Duration // retransmit episodes: age of the newest data from the peer at the end; -1 unknown
	Resets       int           // resets received on the socket
	ErrorReports int           // error reports on the socket
	State        uint8         // TCP state at the conclusion
	SendQ        uint32
	SndBuf       uint32
	SndWnd       uint32
	Layer        events.Layer
	Syscall      string
	Timeout      time.Duration // the time to failure (TimeToFailure), when the episode ended in an error
	Setting      string        // the sysctl or socket option that timeout implies
	Connections  int           // retry storm: connections opened in the window
	Failures     int           // retry storm: failures among them
	Window       time.Duration // retry storm: span of those connections
	Rate         float64       // retry storm: connections per second
	Drops        int           // local drop: packets this host dropped
	DropReason   string        // local drop: the kernel's reason for the latest
	DropLocation string        // local drop: the kernel function that dropped it
	DropDev      string        // local drop: its device, when known
	DropDir      string        // local drop: out or in
}

// Config holds the engine's thresholds. The zero value of a field means
// its default (DefaultConfig); each field says what its default is and
// why.
type Config struct {
	// MinIdle is the shortest silence called an idle period: a reset, or
	// a segment never acknowledged, on the first send after it is an
	// idle reset. Default 2s: real middlebox timeouts are minutes (Azure
	// Load Balancer: 4 min, AWS NLB: 350 s), but a silence this short is
	// still reported, with less confidence, because it is what a lab or
	// an aggressive firewall does; a shorter pause is what a connection
	// in use has between requests.
	MinIdle time.Duration
	// LongIdle is the silence above which an idle reset is diagnosed with
	// high confidence. Default 30s: below the idle timeouts of common
	// middleboxes (minutes), so that a flow one forgot is named with
	// confidence, and far above the pauses of a connection in use; a
	// shorter silence, which a peer restart explains as well, is medium.
	LongIdle time.Duration
	// MaxSockets bounds the sockets (and the process and destination
	// pairs of the retry-storm rule) tracked at once; when it is reached,
	// a quarter are forgotten, closed and longest-quiet first. Default
	// 8192: the memory of a host-wide session that runs for weeks (serve)
	// stays bounded, and what is forgotten first is what is least likely
	// to fail next. A socket forgotten and seen again is judged from
	// that point on only.
	MaxSockets int
	// ClosedLinger is how long a closed socket is remembered after its
	// last event. Default 1 min: long enough for the application's last
	// sends on it to be judged as the failure's echo rather than a new
	// failure, short enough that a host's short-lived connections do not
	// fill the table (in serve, most sockets are short-lived).
	ClosedLinger time.Duration
	// StormWindow, StormMinConns and StormMinFailures define a retry
	// storm: at least StormMinConns connections by one process to one
	// destination within StormWindow, StormMinFailures of them failed.
	// Defaults 10s, 8 and 3: a client retrying with exponential backoff
	// from 100 ms makes 7 connections in 10 s, so eight is a client that
	// does not back off; three failures rule out a burst of healthy
	// connections with one unlucky one.
	StormWindow      time.Duration
	StormMinConns    int
	StormMinFailures int
	// A storm is concluded when it has been quiet for StormWindow, with
	// every connection and failure it made; one that goes on is
	// concluded every StormReport, so that a long session reports it.
	// Default 5 min: a storm that lasts is reported while it matters,
	// and a day of it is 288 diagnoses, not one per connection.
	StormReport time.Duration
}

// DefaultConfig is the thresholds every command diagnoses with.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	if c.MinIdle <= 0 {
		c.MinIdle = 2 * time.Second
	}
	if c.LongIdle <= 0 {
		c.LongIdle = 30 * time.Second
	}
	if c.MaxSockets <= 0 {
		c.MaxSockets = 8192
	}
	if c.ClosedLinger <= 0 {
		c.ClosedLinger = time.Minute
	}
	if c.StormWindow <= 0 {
		c.StormWindow = 10 * time.Second
	}
	if c.StormMinConns <= 0 {
		c.StormMinConns = 8
	}
	if c.StormMinFailures <= 0 {
		c.StormMinFailures = 3
	}
	if c.StormReport <= 0 {
		c.StormReport = 5 * time.Minute
	}
	return c
}

// TimeToFailureMeaning is what a time to failure measures, in the words
// every output that shows one uses.
const TimeToFailureMeaning = "from the first retransmission of the data never acknowledged to the error report"

// TimeToFailure is a failed connection's time to failure, as its
// diagnosis measured it (TimeToFailureMeaning): the one figure report,
// diff and their pages give. ok is false when the failure had none: no
// retransmit of the data, or no error reached the application.
func TimeToFailure(d *Diagnosis) (ttf time.Duration, ok bool) {
	if d.Errno == 0 || d.Evidence.Timeout <= 0 {
		return 0, false
	}
	return d.Evidence.Timeout, true
}

// FromEvents runs a fresh engine over a finished stream (a recording, in
// the order it was written) and returns every diagnosis, those concluded
// at the end of the stream included.
func FromEvents(evs []events.Event) []Diagnosis {
	e := New(Config{})
	var out []Diagnosis
	for i := range evs {
		out = append(out, e.Observe(&evs[i])...)
	}
	return append(out, e.Finish()...)
}
