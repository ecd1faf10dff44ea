package session

import (
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

// Why a live session ended.
const (
	StopSignal        = "signal"
	StopDuration      = "duration"
	StopTargetsExited = "targets exited"
)

// End is how a session ended and what the kernel counted, for sinks to
// close with. A replayed recording without a footer has no Totals.
type End struct {
	Reason string // one of the Stop constants; "" for a replay
	Time   time.Time
	MonoNS uint64
	// Totals are the kernel's exact counts, which do not suffer from
	// ring-buffer loss; nil when unknown.
	Totals *events.Totals
	// Traffic is each destination's traffic from the kernel's own
	// counters; nil when the session did not count it.
	Traffic []events.Traffic
	// Received is the number of events the stream delivered.
	Received uint64
	// Namespaces are the sysctls of the network namespaces the events
	// came from, beyond the one the description holds.
	Namespaces []NetnsSysctls
	// Counters are the traced network namespaces' own counters over
	// the session.
	Counters []NetnsCounters
}
