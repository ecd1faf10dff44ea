// Package tracer runs one tracing session: it plans and attaches the BPF
// programs, streams decoded events to a handler, and returns the kernel's
// exact totals when the session ends.
package tracer

import (
	"context"
	"net/netip"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

// Filters select which events the kernel emits. They are applied in BPF,
// before any map is touched, and cover async events through socket
// ownership.
type Filters struct {
	PIDs    []uint32       // thread-group ids
	Comms   []string       // exact task comm (at most 15 bytes)
	Cgroups []uint64       // cgroup v2 ids
	Dsts    []netip.Prefix // destination CIDRs, v4 or v6
	Ports   []uint16       // destination ports
	Errnos  []int32        // positive errnos; events without an errno still pass
}

// Options configure a session.
type Options struct {
	Filters   Filters
	BTFPath   string        // kernel BTF to use instead of /sys/kernel/btf/vmlinux
	ReadyFile string        // written once every program is attached
	Duration  time.Duration // 0: until ctx is cancelled
	// Disable names hooks the planner must not use (for example "fexit"),
	// so fallbacks can be exercised on kernels that have the preferred hook.
	Disable []string
}

// Hook is the planner's choice for one layer.
type Hook struct {
	Layer  string // "send-return", "syscall-exit", "retransmit", ...
	Hook   string // "tp_btf/sock_send_length", "fexit/tcp_sendmsg", ...
	Active bool   // false: the layer is degraded on this kernel
	Why    string // why this hook, or why the layer is degraded
}

// Session describes a running session to the caller.
type Session struct {
	Hooks    []Hook
	BootTime time.Time // wall-clock time of CLOCK_MONOTONIC zero
}

// Handler receives each decoded event. The Event is only valid during the
// call: copy it to keep it.
type Handler func(*events.Event)

// Run plans, loads and attaches the programs, calls onStart once every
// program is attached (after ReadyFile is written), then streams events to
// h until ctx is done or Duration passes. It returns the exact totals read
// from the kernel at the end.
func Run(ctx context.Context, opts Options, onStart func(*Session) error, h Handler) (*events.Totals, error) {
	return nil, errNotImplemented
}
