package loader

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/sendtrace/sendtrace/internal/events"
)

// Counters are the kernel's loss and attribution counters, summed over CPUs.
type Counters struct {
	Lost         uint64 // ring buffer full
	TotalsFull   uint64 // totals map full: totals inexact
	Unowned      uint64 // async events on sockets with no owner yet
	PendingStale uint64 // stack records not joined by a syscall exit
	Unstreamed   uint64 // drops counted but not streamed (per-socket rate limit)
}

// Counters reads the per-CPU counters.
func (t *Programs) Counters() (Counters, error) {
	var c Counters
	vals := make([]uint64, 0, 8)
	for i, dst := range map[sendtraceCounter]*uint64{
		sendtraceCounterCOUNTER_LOST:             &c.Lost,
		sendtraceCounterCOUNTER_TOTALS_FULL:      &c.TotalsFull,
		sendtraceCounterCOUNTER_UNOWNED:          &c.Unowned,
		sendtraceCounterCOUNTER_PENDING_STALE:    &c.PendingStale,
		sendtraceCounterCOUNTER_DROPS_UNSTREAMED: &c.Unstreamed,
	} {
		vals = vals[:0]
		if err := t.maps.Counters.Lookup(uint32(i), &vals); err != nil {
			return c, fmt.Errorf("read counter %d: %w", i, err)
		}
		for _, v := range vals {
			*dst += v
		}
	}
	return c, nil
}

// Totals reads the exact per-(pid, destination, kind, errno, detail)
// totals.
func (t *Programs) Totals() (*events.Totals, error) {
	tot := &events.Totals{ByKey: make(map[events.TotalsKey]events.TotalsValue)}
	var k sendtraceTotalsKey
	var kv sendtraceTotalsVal
	it := t.maps.Totals.Iterate()
	for it.Next(&k, &kv) {
		t.addTotal(tot, &k, &kv)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read totals: %w", err)
	}
	c, err := t.Counters()
	if err != nil {
		return nil, err
	}
	tot.LostKernel = c.Lost
	tot.Uncounted = c.TotalsFull
	tot.Unstreamed = c.Unstreamed
	return tot, nil
}

func (t *Programs) addTotal(tot *events.Totals, k *sendtraceTotalsKey, kv *sendtraceTotalsVal) {
	key := events.TotalsKey{PID: k.Pid, Kind: events.Kind(k.Kind), Errno: k.Err,
		Dst: addrPort(k.Family, &k.Daddr, k.Dport), Detail: t.detail(events.Kind(k.Kind), k.Detail)}
	// Two kernel keys may name the same key here: add them up.
	v := tot.ByKey[key]
	v.Count += kv.Count
	v.Bytes += kv.Bytes
	v.Segs += kv.Segs
	tot.ByKey[key] = v
}

// RetireTotals takes the totals of the given processes out of the kernel's
// map and returns them. Each key is read and deleted in one step, so a
// count the kernel adds meanwhile lands in a new key, read later: none is
// lost or counted twice. A session that runs for weeks (serve) retires
// the processes that exited, so the map holds the living, not every
// process that ever failed.
func (t *Programs) RetireTotals(pids []uint32) (*events.Totals, error) {
	tot := &events.Totals{ByKey: make(map[events.TotalsKey]events.TotalsValue)}
	if len(pids) == 0 {
		return tot, nil
	}
	retire := make(map[uint32]bool, len(pids))
	for _, pid := range pids {
		retire[pid] = true
	}
	var keys []sendtraceTotalsKey
	var k sendtraceTotalsKey
	var kv sendtraceTotalsVal
	it := t.maps.Totals.Iterate()
	for it.Next(&k, &kv) {
		if retire[k.Pid] {
			keys = append(keys, k)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read totals: %w", err)
	}
	for i := range keys {
		if err := t.maps.Totals.LookupAndDelete(&keys[i], &kv); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return tot, fmt.Errorf("retire totals: %w", err)
		}
		t.addTotal(tot, &keys[i], &kv)
	}
	return tot, nil
}

// detail names a totals key's detail: a retransmit's kind, a drop's reason.
func (t *Programs) detail(kind events.Kind, d uint32) string {
	switch kind {
	case events.KindRetransmit:
		return events.RetransKind(d).String()
	case events.KindDrop:
		return t.DropNames.Reason(d)
	}
	return ""
}

// DstStat is one destination's traffic, from the kernel's own TCP counters.
type DstStat struct {
	PID          uint32
	Dst          netip.AddrPort
	Sends        uint64 // successful send calls (only when the session counts sends)
	SendBytes    uint64 // bytes those calls returned
	Conns        uint64
	BytesSent    uint64
	DataSegsOut  uint64
	RetransSegs  uint64
	BytesRetrans uint64
}

// DstStats adds the counters of TCP sockets still open, then returns the
// per-destination totals. Call it once, after Detach.
func (t *Programs) DstStats() ([]DstStat, error) {
	if err := runIter(t.tcpLink); err != nil {
		return nil, fmt.Errorf("count open TCP sockets: %w", err)
	}
	if err := runIter(t.udpLink); err != nil {
		return nil, fmt.Errorf("count open UDP sockets: %w", err)
	}
	var out []DstStat
	var k sendtraceDstKey
	var v sendtraceDstVal
	it := t.maps.DstStats.Iterate()
	for it.Next(&k, &v) {
		out = append(out, DstStat{PID: k.Pid, Dst: addrPort(k.Family, &k.Daddr, k.Dport),
			Sends: v.Sends, SendBytes: v.SendBytes, Conns: v.Conns, BytesSent: v.BytesSent,
			DataSegsOut: v.DataSegsOut, RetransSegs: v.RetransSegs, BytesRetrans: v.BytesRetrans})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read destination counters: %w", err)
	}
	return out, nil
}

// Traffic returns each destination's traffic, from DstStats. Sends and
// bytes are only set when the session counted successful sends.
func (t *Programs) Traffic(countSends bool) ([]events.Traffic, error) {
	ds, err := t.DstStats()
	if err != nil {
		return nil, err
	}
	out := make([]events.Traffic, 0, len(ds))
	for _, d := range ds {
		tr := events.Traffic{Dst: d.Dst, DataSegs: d.DataSegsOut, RetransSegs: d.RetransSegs}
		if countSends {
			sends, bytes := d.Sends, d.SendBytes
			tr.Sends, tr.Bytes = &sends, &bytes
		}
		out = append(out, tr)
	}
	return out, nil
}

// SetProcOwner writes the owner user space found through /proc for a
// socket's inode, or pid 0 for a socket no process the filters select
// holds: the socket's next event takes it into storage, and the kernel
// filters that socket itself from then on.
func (t *Programs) SetProcOwner(ino uint64, pid uint32, comm string, cgroup uint64) error {
	o := procOwner(pid, comm, cgroup)
	if err := t.maps.ProcOwners.Put(ino, &o); err != nil {
		return fmt.Errorf("write the owner of socket inode %d: %w", ino, err)
	}
	return nil
}

// ForgetProcOwner deletes an answer the kernel has not taken: its socket
// was not heard from again.
func (t *Programs) ForgetProcOwner(ino uint64) error {
	if err := t.maps.ProcOwners.Delete(ino); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	return nil
}

// procOwner is an owner found through /proc, as the kernel keeps it.
func procOwner(pid uint32, comm string, cgroup uint64) sendtraceOwner {
	o := sendtraceOwner{Pid: pid, Tid: pid, Cgroup: cgroup, ViaProc: 1}
	for i := 0; i < len(o.Comm)-1 && i < len(comm); i++ {
		o.Comm[i] = int8(comm[i])
	}
	return o
}

// ListenerOwner is the owner user space found for a listening socket, by
// the socket's network namespace and port; Ambiguous when processes of
// different pids listen there (SO_REUSEPORT).
type ListenerOwner struct {
	Netns     uint32
	Port      uint16
	PID       uint32
	Comm      string
	Cgroup    uint64
	Ambiguous bool
}

// SetListenerOwners writes the listeners' owners found through /proc,
// for the sockets accepted from them, and deletes those written before
// that are no longer listening: a later listener on the same port may be
// another process's. It returns what it wrote, to be passed back next
// time as before.
func (t *Programs) SetListenerOwners(ls []ListenerOwner, before map[[2]uint32]bool) (map[[2]uint32]bool, error) {
	written := make(map[[2]uint32]bool, len(ls))
	for _, l := range ls {
		k := sendtraceListenerKey{Netns: l.Netns, Port: l.Port}
		v := sendtraceListenerOwner{O: procOwner(l.PID, l.Comm, l.Cgroup)}
		// Cloned into accepted sockets: the task found holding one
		// replaces it (a pre-forked worker).
		v.O.Inherited = 1
		if l.Ambiguous {
			v.Ambiguous = 1
		}
		if err := t.maps.ListenerOwners.Put(&k, &v); err != nil {
			return written, fmt.Errorf("write the owner of the listener on port %d: %w", l.Port, err)
		}
		written[[2]uint32{l.Netns, uint32(l.Port)}] = true
	}
	for nk := range before {
		if !written[nk] {
			k := sendtraceListenerKey{Netns: nk[0], Port: uint16(nk[1])}
			_ = t.maps.ListenerOwners.Delete(&k)
		}
	}
	return written, nil
}
