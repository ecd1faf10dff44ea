package events

import "strconv"

// RetransKind says why a segment was retransmitted, as the kernel's own
// counters tell retransmits apart. The numbers are bpf/lib/event.h's enum
// retrans_kind.
type RetransKind uint8

const (
	RetransNone RetransKind = iota
	// RetransRTO: in CA_Loss, the timer's retransmit and the loss recovery
	// after it (TCPTimeouts, TCPSlowStartRetrans).
	RetransRTO
	// RetransFast: recovery from duplicate ACKs, SACK or RACK
	// (TCPFastRetrans).
	RetransFast
	// RetransTLP: a tail loss probe that resent data (TCPLossProbes).
	RetransTLP
	// RetransSYN: a SYN (TCPSynRetrans).
	RetransSYN
	// RetransSYNACK: a listener's SYN-ACK (TCPSynRetrans); the event
	// belongs to the listener.
	RetransSYNACK
	// RetransUntraced appears in the kernel's totals only: segments the
	// kernel counted for a socket (tcp_sock.total_retrans) that no event
	// carried. Before 6.17 a retransmit that failed after it was counted
	// fires no tracepoint, and some kernels count a retransmit without
	// firing it.
	RetransUntraced
)

var retransKindNames = [...]string{"", "rto", "fast", "tlp", "syn", "synack", "untraced"}

func (k RetransKind) String() string {
	if int(k) < len(retransKindNames) {
		return retransKindNames[k]
	}
	return strconv.Itoa(int(k))
}

// ParseRetransKind is the inverse of RetransKind.String.
func ParseRetransKind(s string) (RetransKind, bool) {
	for i, n := range retransKindNames {
		if n == s {
			return RetransKind(i), true
		}
	}
	return RetransNone, false
}

// DropDir is the way a dropped packet was going, seen from its socket.
type DropDir uint8

const (
	DropNone DropDir = iota
	DropOut          // sent by the socket
	DropIn           // on its way to the socket
)

var dropDirNames = [...]string{"", "out", "in"}

func (d DropDir) String() string {
	if int(d) < len(dropDirNames) {
		return dropDirNames[d]
	}
	return strconv.Itoa(int(d))
}

// ParseDropDir is the inverse of DropDir.String.
func ParseDropDir(s string) (DropDir, bool) {
	for i, n := range dropDirNames {
		if n == s {
			return DropDir(i), true
		}
	}
	return DropNone, false
}

// The positive values the kernel's transmit path returns where others
// return -errno (include/linux/netdevice.h).
var xmitCodes = [...]string{1: "NET_XMIT_DROP", 2: "NET_XMIT_CN"}

// enobufs is what the kernel makes of a qdisc's NET_XMIT_DROP for a
// sender (net_xmit_errno).
const enobufs = 105

// RetransErrno is the errno of a retransmit's err: -err for a negative
// one, ENOBUFS for a qdisc's NET_XMIT_DROP or NET_XMIT_CN (what the kernel
// tells senders), 0 when it went out.
func RetransErrno(err int32) int32 {
	switch {
	case err < 0:
		return -err
	case err > 0 && int(err) < len(xmitCodes) && xmitCodes[err] != "":
		return enobufs
	}
	return err
}

// RetransErrName names a retransmit's err exactly: EPERM, EHOSTUNREACH,
// NET_XMIT_DROP; "" when it went out.
func RetransErrName(err int32) string {
	switch {
	case err < 0:
		return ErrnoName(-err)
	case err > 0 && int(err) < len(xmitCodes) && xmitCodes[err] != "":
		return xmitCodes[err]
	case err > 0:
		return strconv.Itoa(int(err))
	}
	return ""
}

// parseRetransErr is the inverse of RetransErrno and RetransErrName
// together, as JSON carries them.
func parseRetransErr(errno int32, name string) int32 {
	for code, n := range xmitCodes {
		if n != "" && n == name {
			return int32(code)
		}
	}
	return -errno
}

// TotalsKeyOf is the key the kernel counts e under in its exact totals.
func TotalsKeyOf(e *Event) TotalsKey {
	k := TotalsKey{PID: e.PID, Kind: e.Kind, Errno: e.Errno, Dst: e.Dst}
	switch e.Kind {
	case KindRetransmit:
		k.Errno = RetransErrno(e.RetransErr)
		k.Detail = e.RetransKind.String()
	case KindDrop:
		k.Detail = e.DropReason
	}
	return k
}
