package htmlreport

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
)

// synthetic writes a recording of conns sockets of one process, each
// black-holed: SYN_SENT, ESTABLISHED, rtx retransmits of one segment with
// a doubling RTO, then ETIMEDOUT's error report, the failing send and
// CLOSE. It is what a large incident looks like to the page, made without
// a kernel, at sizes the lab cannot reach in a test's time. It returns the
// number of events: conns * (rtx + 5).
func synthetic(t testing.TB, path, comm string, conns, rtx int) uint64 {
	t.Helper()
	return syntheticKinds(t, path, comm, conns, rtx, nil)
}

// rtxOf gives the r-th retransmit of connection c its kind, segments and
// err.
type rtxOf func(c, r int) (kind events.RetransKind, segs uint32, err int32)

// syntheticKinds is synthetic with retransmits of the kinds kind gives.
func syntheticKinds(t testing.TB, path, comm string, conns, rtx int, kind rtxOf) uint64 {
	t.Helper()
	boot := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	start := uint64(1000 * time.Second)
	h := &record.Header{Description: session.Description{
		SendtraceVersion: "test", Hostname: "synthetic", KernelRelease: "6.18.0", BootTime: boot,
		StartTime: boot.Add(time.Duration(start)), StartMonoNS: start,
		Sysctls: map[string]string{"net.ipv4.tcp_retries2": "8"},
		Hooks:   session.Plan{{Layer: session.LayerSendReturn, Hook: "tp_btf/sock_send_length", Active: true}},
	}}
	w, err := record.Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddrPort("198.18.0.2:9000")
	totals := &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}}
	var n, end uint64
	for c := range conns {
		opened := start + uint64(c)*uint64(50*time.Millisecond)
		mono := opened
		emit := func(k events.Kind, f func(*events.Event)) {
			e := events.Event{
				Time: boot.Add(time.Duration(mono)), Mono: mono, Kind: k,
				PID: 4242, TID: 4242, Comm: comm, OwnerKnown: true, Cookie: uint64(c + 1),
				Family: events.AFInet, Protocol: events.ProtoTCP,
				Src: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), uint16(30000+c%30000)), Dst: dst,
				State: events.StateEstablished, Bytes: 100, SendQ: 100, SndBuf: 16384, MSS: 1448, Cwnd: 10,
				SinceSend: -1, SinceRecv: -1, DataSegsIn: 0, Seq: 1000 + uint32(c),
			}
			f(&e)
			if err := w.WriteEvent(&e); err != nil {
				t.Fatal(err)
			}
			key := events.TotalsKeyOf(&e)
			v := totals.ByKey[key]
			v.Count++
			v.Segs += uint64(e.Segs)
			totals.ByKey[key] = v
			n++
			end = max(end, mono)
		}
		emit(events.KindStateChange, func(e *events.Event) {
			e.State, e.OldState, e.Src, e.Bytes, e.SendQ = events.StateSynSent, events.StateClose, netip.AddrPortFrom(e.Src.Addr(), 0), 0, 0
		})
		mono += uint64(time.Millisecond)
		emit(events.KindStateChange, func(e *events.Event) { e.OldState, e.Bytes, e.SendQ = events.StateSynSent, 0, 0 })
		rto := 200 * time.Millisecond
		mono += uint64(rto)
		for r := range rtx {
			emit(events.KindRetransmit, func(e *events.Event) {
				e.Retransmits, e.Backoff, e.RTO, e.TotalRetrans = uint32(r), uint8(r), rto, uint32(r+1)
				e.SinceSend, e.SinceRecv = rto, time.Duration(mono-opened)
				if kind != nil {
					e.RetransKind, e.Segs, e.RetransErr = kind(c, r)
				}
			})
			rto = min(2*rto, 120*time.Second)
			mono += uint64(rto)
		}
		emit(events.KindErrorReport, func(e *events.Event) { e.Errno, e.State = 110, events.StateClose })
		emit(events.KindSendError, func(e *events.Event) {
			e.Errno, e.StackErrno, e.State, e.Syscall, e.Layer = 110, 110, events.StateClose, "sendto", events.LayerBoth
		})
		emit(events.KindStateChange, func(e *events.Event) { e.State, e.OldState, e.Bytes = events.StateClose, events.StateEstablished, 0 })
	}
	f := record.NewFooter(&session.End{Time: boot.Add(time.Duration(end)), MonoNS: end, Totals: totals}, h, n, nil, "events")
	if err := w.Close(f); err != nil {
		t.Fatal(err)
	}
	return n
}
