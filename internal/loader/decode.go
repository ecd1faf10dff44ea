package loader

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"github.com/sendtrace/sendtrace/internal/events"
	"golang.org/x/sys/unix"
)

// EventSize is the size of one raw record.
const EventSize = int(unsafe.Sizeof(sendtraceEvent{}))

// ErrShortRecord is returned for a record smaller than an event.
var ErrShortRecord = errors.New("short ring-buffer record")

// Decoder turns raw ring-buffer records into events. It is not safe for
// concurrent use; it keeps per-session state (clock offset, interned
// command names) so that decoding allocates nothing for repeated names.
type Decoder struct {
	// bootWall is the wall-clock time of CLOCK_MONOTONIC zero.
	bootWall time.Time
	hz       int64
	comms    map[[16]byte]string
	drops    *DropNames
}

// NameDrops makes the decoder name drop reasons and locations with n (a
// Tracer's DropNames); without it they stay numbers.
func (d *Decoder) NameDrops(n *DropNames) *Decoder {
	d.drops = n
	return d
}

// NewDecoder returns a decoder converting monotonic timestamps with
// bootWall and jiffies with hz.
func NewDecoder(bootWall time.Time, hz int) *Decoder {
	if hz <= 0 {
		hz = 250
	}
	return &Decoder{bootWall: bootWall, hz: int64(hz), comms: make(map[[16]byte]string)}
}

func (d *Decoder) jiffies(j uint32) time.Duration {
	if j == uint32(sendtraceLimitsJIFFIES_UNKNOWN) {
		return -1
	}
	return time.Duration(int64(j) * int64(time.Second) / d.hz)
}

func (d *Decoder) comm(raw [16]int8) string {
	var k [16]byte
	for i, c := range raw {
		k[i] = byte(c)
	}
	if s, ok := d.comms[k]; ok {
		return s
	}
	n := bytes.IndexByte(k[:], 0)
	if n < 0 {
		n = len(k)
	}
	s := string(k[:n])
	if len(d.comms) > 4096 {
		clear(d.comms)
	}
	d.comms[k] = s
	return s
}

func addrPort(family uint16, raw *[16]uint8, port uint16) netip.AddrPort {
	var a netip.Addr
	switch family {
	case unix.AF_INET:
		a = netip.AddrFrom4([4]byte{raw[0], raw[1], raw[2], raw[3]})
	case unix.AF_INET6:
		a = netip.AddrFrom16(*raw).Unmap()
	default:
		return netip.AddrPort{}
	}
	if a.IsUnspecified() && port == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, port)
}

// Decode fills e from one raw record.
func (d *Decoder) Decode(raw []byte, e *events.Event) error {
	if len(raw) < EventSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrShortRecord, len(raw), EventSize)
	}
	r := (*sendtraceEvent)(unsafe.Pointer(&raw[0]))
	*e = events.Event{
		Time:         d.bootWall.Add(time.Duration(r.TsNs)),
		Mono:         r.TsNs,
		Kind:         events.Kind(r.Kind),
		PID:          r.Pid,
		TID:          r.Tid,
		Comm:         d.comm(r.Comm),
		Cgroup:       r.Cgroup,
		OwnerKnown:   r.OwnerKnown != 0,
		Cookie:       r.Cookie,
		Netns:        r.Netns,
		Family:       r.Family,
		Protocol:     r.Protocol,
		Src:          addrPort(r.Family, &r.Saddr, r.Sport),
		Dst:          addrPort(r.Family, &r.Daddr, r.Dport),
		State:        r.State,
		Bytes:        r.Bytes,
		Errno:        r.Err,
		Layer:        events.Layer(r.Layer),
		Syscall:      SyscallName(r.SyscallNr),
		StackErrno:   r.StackErr,
		SinceSend:    -1,
		SinceRecv:    -1,
		Seq:          r.Seq,
		Retransmits:  r.Retransmits,
		TotalRetrans: r.TotalRetrans,
		Backoff:      r.Backoff,
		SRTT:         time.Duration(r.SrttUs) * time.Microsecond,
		Cwnd:         r.Cwnd,
		SendQ:        r.SendQ,
		SndBuf:       r.Sndbuf,
		SndWnd:       r.SndWnd,
		MSS:          r.Mss,
		RetransErr:   r.RetransErr,
		RetransKind:  events.RetransKind(r.RetransKind),
		Segs:         r.Segs,
		DropDir:      events.DropDir(r.DropDir),
		OldState:     r.OldState,
		ResetReason:  r.ResetReason,
	}
	if sendtraceOwnerVia(r.OwnerVia) == sendtraceOwnerViaOWNER_VIA_PROC {
		e.OwnerVia = events.OwnerViaProc
	}
	if !e.OwnerKnown {
		e.Comm = ""
	}
	if e.Kind == events.KindDrop {
		e.DropReason = d.drops.Reason(r.DropReason)
		e.DropLocation = d.drops.Location(r.DropLocation)
		e.DropDev = d.comm(r.DropDev)
	}
	if r.Protocol == unix.IPPROTO_TCP && (r.Family == unix.AF_INET || r.Family == unix.AF_INET6) {
		e.SinceSend = d.jiffies(r.SinceSendJ)
		e.SinceRecv = d.jiffies(r.SinceRecvJ)
		e.DataSegsIn = int64(r.DataSegsIn)
		e.SndUna, e.RcvNxt = r.SndUna, r.RcvNxt
		if e.Kind == events.KindStateChange && e.State == events.StateEstablished {
			e.SndISN, e.RcvISN, e.HasISN = r.SndIsn, r.RcvIsn, true
		}
		e.RTO = d.jiffies(r.RtoJ)
	}
	return nil
}

// The send family, numbered for the architecture this binary is built for
// (unix.SYS_* differ between amd64 and arm64), which is the architecture of
// the kernel it traces and of the BPF object it loads (bpf/lib/syscall.h).
var syscallNames = map[uint32]string{
	unix.SYS_WRITE: "write", unix.SYS_WRITEV: "writev", unix.SYS_SENDTO: "sendto",
	unix.SYS_SENDMSG: "sendmsg", unix.SYS_SENDMMSG: "sendmmsg",
}

// SyscallName names a send-family syscall number, or returns "".
func SyscallName(nr uint32) string {
	return syscallNames[nr]
}

// PendingOwner returns the socket inode of a raw record whose owner the
// kernel could not find under a process filter (OWNER_PENDING): the
// tracer looks it up in /proc, then attributes the event or drops it.
func PendingOwner(raw []byte) (ino uint64, pending bool) {
	if len(raw) < EventSize {
		return 0, false
	}
	r := (*sendtraceEvent)(unsafe.Pointer(&raw[0]))
	return r.SockIno, sendtraceOwnerVia(r.OwnerVia) == sendtraceOwnerViaOWNER_PENDING
}

// PendingPID is the pid the kernel's totals count a pending event under
// until its owner is known.
const PendingPID = uint32(sendtraceLimitsPENDING_PID)
