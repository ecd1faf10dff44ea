package render

import (
	"net/netip"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

var t0 = time.Date(2026, 11, 22, 2, 14, 45, 123456789, time.UTC)

func sendError(errno int32, dst string, comm string, pid, bytes uint32) events.Event {
	return events.Event{
		Time: t0, Kind: events.KindSendError,
		PID: pid, TID: pid, Comm: comm, OwnerKnown: true,
		Family: events.AFInet, Protocol: events.ProtoTCP,
		Src:   netip.MustParseAddrPort("10.0.0.1:43210"),
		Dst:   netip.MustParseAddrPort(dst),
		State: events.StateEstablished, Bytes: bytes, Errno: errno,
		Layer: events.LayerBoth, Syscall: "write", StackErrno: errno,
		SinceSend: 12 * time.Millisecond, SinceRecv: 3200 * time.Millisecond,
	}
}

func retransmit(dst string) events.Event {
	return events.Event{
		Time: t0.Add(-time.Second), Kind: events.KindRetransmit,
		PID: 4242, Comm: "curl", OwnerKnown: true,
		Family: events.AFInet, Protocol: events.ProtoTCP,
		Src:   netip.MustParseAddrPort("10.0.0.1:43210"),
		Dst:   netip.MustParseAddrPort(dst),
		State: events.StateEstablished, Bytes: 1448,
		Seq: 3000000000, Retransmits: 3, Backoff: 3, RTO: 1600 * time.Millisecond,
		SRTT: 23456 * time.Microsecond, Cwnd: 1, SendQ: 65160,
		SinceSend: 5 * time.Millisecond, SinceRecv: 4 * time.Second,
	}
}

func resetRecv(dst string) events.Event {
	return events.Event{
		Time: t0.Add(-500 * time.Millisecond), Kind: events.KindReceiveReset,
		PID: 4242, Comm: "curl", OwnerKnown: true,
		Family: events.AFInet, Protocol: events.ProtoTCP,
		Src:   netip.MustParseAddrPort("10.0.0.1:43210"),
		Dst:   netip.MustParseAddrPort(dst),
		State: events.StateEstablished, SinceSend: time.Millisecond, SinceRecv: 900 * time.Millisecond,
	}
}
