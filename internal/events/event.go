// Package events defines the one event type every consumer of sendtrace
// shares (renderers, recordings, diagnosis), and turns raw ring-buffer
// records into it.
package events

import (
	"net/netip"
	"time"
)

// Kind says which kernel observation an Event came from.
type Kind uint8

const (
	KindUnknown Kind = iota
	// KindSendError is one failed send-family call: the errno the
	// application got, joined with the stack-layer record of the same call
	// when there is one.
	KindSendError
	// KindRetransmit is one tcp_retransmit_skb.
	KindRetransmit
	// KindErrorReport is inet_sk_error_report: sk_err was set on a socket.
	KindErrorReport
	// KindReceiveReset is tcp_receive_reset: the peer reset the connection.
	KindReceiveReset
	// KindSendReset is tcp_send_reset: this host reset the connection.
	KindSendReset
	// KindStateChange is inet_sock_set_state for a socket that has an owner.
	KindStateChange
	// KindDrop is a packet of a traced socket dropped on this host
	// (skb:kfree_skb), with the kernel's reason.
	KindDrop
)

var kindNames = [...]string{
	KindUnknown:      "unknown",
	KindSendError:    "send_error",
	KindRetransmit:   "retransmit",
	KindErrorReport:  "error_report",
	KindReceiveReset: "receive_reset",
	KindSendReset:    "send_reset",
	KindStateChange:  "state_change",
	KindDrop:         "drop",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), true
		}
	}
	return KindUnknown, false
}

// Layer says where a send error was seen.
type Layer uint8

const (
	LayerNone Layer = iota
	// LayerStack: only the protocol's sendmsg return was seen (an in-kernel
	// sender, io_uring, or a syscall sendtrace does not watch).
	LayerStack
	// LayerSyscall: only the syscall exit was seen. The error came from
	// outside the TCP/IP stack (seccomp, an LSM, another socket family).
	LayerSyscall
	// LayerBoth: the syscall exit joined with the stack-layer record.
	LayerBoth
)

var layerNames = [...]string{"", "stack", "syscall", "stack+syscall"}

func (l Layer) String() string {
	if int(l) < len(layerNames) {
		return layerNames[l]
	}
	return ""
}

// ParseLayer is the inverse of Layer.String.
func ParseLayer(s string) Layer {
	for i, n := range layerNames {
		if n == s {
			return Layer(i)
		}
	}
	return LayerNone
}

// Event is one observation, already attributed to the socket's owner.
//
// PID, TID and Comm are the socket's owner as recorded in process context
// (connect, accept, send), never the task that happened to be on the CPU
// when a softirq or timer fired. OwnerKnown is false when sendtrace has not
// yet seen the socket in process context.
type Event struct {
	Time time.Time // wall clock
	Mono uint64    // CLOCK_MONOTONIC ns (bpf_ktime_get_ns), for ordering and deltas
	Kind Kind

	PID    uint32
	TID    uint32
	Comm   string
	Cgroup uint64
	// Netns is the inode of the socket's network namespace (whose
	// sysctls apply to it); 0 when unknown (older recordings).
	Netns      uint32
	OwnerKnown bool
	// OwnerVia says how the owner was found: "" by the kernel (in
	// process context, or the seeding iterator), OwnerViaProc by
	// sendtrace through /proc/PID/fd, for a socket the kernel had no
	// owner for.
	OwnerVia string
	// Workload is what owns the socket (a pod's container, a unit, ...),
	// set by a pipeline stage; nil when not resolved.
	Workload *Workload

	Cookie   uint64 // socket cookie, as `ss -e` prints it
	Family   uint16 // unix.AF_INET or unix.AF_INET6
	Protocol uint8  // unix.IPPROTO_TCP, unix.IPPROTO_UDP, ...
	Src      netip.AddrPort
	Dst      netip.AddrPort
	State    uint8 // TCP state (1 = ESTABLISHED ... as in include/net/tcp_states.h)

	Bytes uint32 // send-family: requested size; retransmit: segment length; drop: packet length
	Errno int32  // positive errno, 0 when none
	// Segs is, for a retransmit, the segments the kernel added to
	// TcpRetransSegs (0 for an attempt that failed before it counted), and
	// for a drop the segments the packet carried (GSO).
	Segs uint32

	// Send errors.
	Layer      Layer
	Syscall    string // "write", "sendto", ...; empty for stack-only events
	StackErrno int32  // errno returned by the protocol's sendmsg, when seen

	// TCP socket details at the time of the event. SinceSend/SinceRecv are
	// -1 when unknown.
	SinceSend    time.Duration // since the socket last sent data
	SinceRecv    time.Duration // since the socket last received data
	Seq          uint32        // retransmit: sequence of the segment
	Retransmits  uint32        // icsk_retransmits: consecutive RTO retransmits
	TotalRetrans uint32        // tcp_sock.total_retrans
	Backoff      uint8         // icsk_backoff
	RTO          time.Duration // icsk_rto
	SRTT         time.Duration
	Cwnd         uint32
	SendQ        uint32 // bytes unacked plus not yet sent (write_seq - snd_una)
	SndBuf       uint32 // sk_sndbuf
	SndWnd       uint32 // peer's advertised window
	MSS          uint32 // mss_cache
	// DataSegsIn counts the data segments received from the peer
	// (tcp_sock.data_segs_in): 0 means the peer never sent data. -1 when
	// unknown (a recording made before sendtrace read it).
	DataSegsIn int64
	// Sequence state, which survives NAT. SndUna is the oldest byte not
	// yet acknowledged by the peer, RcvNxt the next byte expected from it.
	SndUna, RcvNxt uint32
	// SndISN and RcvISN are this end's and the peer's initial sequence
	// numbers, known (HasISN) in the state change to ESTABLISHED. The peer
	// sees the same two numbers the other way round.
	SndISN, RcvISN uint32
	HasISN         bool
	// RetransErr is the kernel's err argument (6.17+) as it passed it: a
	// negative errno, or a positive NET_XMIT_* code (RetransErrno and
	// RetransErrName read it).
	RetransErr  int32
	RetransKind RetransKind

	// Drops.
	DropReason   string // enum skb_drop_reason without its prefix: NETFILTER_DROP
	DropLocation string // the kernel function that dropped the packet
	DropDev      string // the packet's device, when it had one
	DropDir      DropDir

	// State changes and resets.
	OldState    uint8
	ResetReason uint32 // tcp_send_reset: enum sk_rst_reason, when the kernel has it
}

// Totals are exact counts kept in kernel maps, independent of ring-buffer
// loss. They are keyed by what the summaries group on.
type Totals struct {
	ByKey map[TotalsKey]TotalsValue
	// LostKernel is the number of events the kernel could not put in the
	// ring buffer (reserve failed); LostUser is the number the reader failed
	// to decode or deliver.
	LostKernel uint64
	LostUser   uint64
	// Uncounted is the number of events whose (pid, kind, errno) found no
	// room in the kernel's totals map: when it is not zero, ByKey is short
	// by that many.
	Uncounted uint64
	// Unstreamed is the number of drop events counted in ByKey but not
	// streamed, under the per-socket rate limit of a drop storm.
	Unstreamed uint64
	// OwnersByProc is the number of events whose owner sendtrace found
	// through /proc (their counts moved into ByKey under that owner), and
	// OwnersUnresolved the number whose owner was still being looked up
	// when they were lost: counted in no process's totals.
	OwnersByProc, OwnersUnresolved uint64
}

// OwnerViaProc is Event.OwnerVia for an owner found through /proc.
const OwnerViaProc = "proc"

// TotalsKey groups the kernel's exact counters. A failed retransmit is
// counted under its errno (ENOBUFS for a qdisc drop, as the kernel tells
// senders).
type TotalsKey struct {
	PID   uint32
	Kind  Kind
	Errno int32
	Dst   netip.AddrPort
	// Detail is a retransmit's kind (rto, fast, tlp, syn, synack) or a
	// drop's reason (NETFILTER_DROP); empty for the other kinds.
	Detail string
}

// TotalsValue is one group's count and bytes, and for retransmits and
// drops its segments.
type TotalsValue struct {
	Count uint64 // events
	Bytes uint64
	// Segs: retransmits: segments counted in TcpRetransSegs, the unit of
	// the kernel's own counters; drops: segments dropped.
	Segs uint64
}

// AddKeys adds o's counts, key by key, to t.
func (t *Totals) AddKeys(o *Totals) {
	if t.ByKey == nil {
		t.ByKey = make(map[TotalsKey]TotalsValue, len(o.ByKey))
	}
	for k, v := range o.ByKey {
		s := t.ByKey[k]
		s.Count += v.Count
		s.Bytes += v.Bytes
		s.Segs += v.Segs
		t.ByKey[k] = s
	}
}

// SumSegs returns the segments of a kind: for retransmits, what the
// kernel added to TcpRetransSegs.
func (t *Totals) SumSegs(k Kind) uint64 {
	var n uint64
	for key, v := range t.ByKey {
		if key.Kind == k {
			n += v.Segs
		}
	}
	return n
}

// Sum returns the total count of events of a kind (all kinds when k is
// KindUnknown).
func (t *Totals) Sum(k Kind) uint64 {
	var n uint64
	for key, v := range t.ByKey {
		if k == KindUnknown || key.Kind == k {
			n += v.Count
		}
	}
	return n
}

// Kinds lists every kind, KindUnknown first.
func Kinds() []Kind {
	out := make([]Kind, len(kindNames))
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}
