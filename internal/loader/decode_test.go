package loader

import (
	"errors"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
	"golang.org/x/sys/unix"
)

func rawOf(r *sendtraceEvent) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(r)), EventSize)
}

func TestDecodeRetransmitV4(t *testing.T) {
	r := sendtraceEvent{
		TsNs: 2_000_000_000, Cookie: 4097, Pid: 42, Tid: 43, Family: unix.AF_INET,
		Protocol: unix.IPPROTO_TCP, State: 1, Kind: uint8(events.KindRetransmit), OwnerKnown: 1,
		Bytes: 1448, Sport: 40000, Dport: 9000, SinceSendJ: 250, SinceRecvJ: uint32(sendtraceLimitsJIFFIES_UNKNOWN), RtoJ: 50,
		SrttUs: 1500, Backoff: 3,
	}
	copy(r.Saddr[:], []byte{198, 18, 0, 1})
	copy(r.Daddr[:], []byte{198, 18, 0, 2})
	copy(r.Comm[:], []int8{'c', 'u', 'r', 'l'})
	boot := time.Unix(1000, 0)
	d := NewDecoder(boot, 250)
	var e events.Event
	if err := d.Decode(rawOf(&r), &e); err != nil {
		t.Fatal(err)
	}
	if e.Kind != events.KindRetransmit || e.PID != 42 || e.TID != 43 || e.Comm != "curl" || !e.OwnerKnown {
		t.Errorf("identity: %+v", e)
	}
	if e.Src != netip.MustParseAddrPort("198.18.0.1:40000") || e.Dst != netip.MustParseAddrPort("198.18.0.2:9000") {
		t.Errorf("addresses %v -> %v", e.Src, e.Dst)
	}
	if !e.Time.Equal(boot.Add(2 * time.Second)) {
		t.Errorf("time %v", e.Time)
	}
	if e.SinceSend != time.Second || e.SinceRecv != -1 || e.RTO != 200*time.Millisecond {
		t.Errorf("jiffies conversions: since_send %v since_recv %v rto %v", e.SinceSend, e.SinceRecv, e.RTO)
	}
	if e.SRTT != 1500*time.Microsecond || e.Backoff != 3 || e.Bytes != 1448 {
		t.Errorf("tcp details: %+v", e)
	}
}

func TestDecodeV4MappedAndUnknownOwner(t *testing.T) {
	r := sendtraceEvent{Family: unix.AF_INET6, Protocol: unix.IPPROTO_UDP, Kind: uint8(events.KindSendError),
		Dport: 53, Err: int32(unix.ECOMM), SyscallNr: unix.SYS_SENDTO, Layer: uint8(events.LayerSyscall)}
	copy(r.Daddr[:], []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 9})
	copy(r.Comm[:], []int8{'x'})
	var e events.Event
	if err := NewDecoder(time.Unix(0, 0), 100).Decode(rawOf(&r), &e); err != nil {
		t.Fatal(err)
	}
	if e.Dst != netip.MustParseAddrPort("198.18.0.9:53") {
		t.Errorf("v4-mapped destination shown as %v", e.Dst)
	}
	if e.Src.IsValid() {
		t.Errorf("empty source decoded as %v", e.Src)
	}
	if e.Comm != "" || e.OwnerKnown {
		t.Errorf("unknown owner must not carry a command name: %q", e.Comm)
	}
	if e.Syscall != "sendto" || e.Layer != events.LayerSyscall || e.Errno != int32(unix.ECOMM) {
		t.Errorf("send error fields: %+v", e)
	}
	if e.SinceSend != -1 {
		t.Errorf("UDP socket has no TCP idle time, got %v", e.SinceSend)
	}
}

func TestDecodeShortRecord(t *testing.T) {
	var e events.Event
	err := NewDecoder(time.Now(), 250).Decode(make([]byte, EventSize-1), &e)
	if !errors.Is(err, ErrShortRecord) {
		t.Fatalf("got %v, want ErrShortRecord", err)
	}
}

func TestBuildConfigFilters(t *testing.T) {
	c, err := buildConfig(Config{SelfPID: 7, Options: session.Options{Filters: session.Filters{
		PIDs: []uint32{1, 2}, Comms: []string{"nginx"},
		Dsts:  []netip.Prefix{netip.MustParsePrefix("198.18.1.77/15"), netip.MustParsePrefix("fd00::/8")},
		Ports: []uint16{443}, Errnos: []int32{70},
	}}}, &Programs{RetransmitHasErr: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Npids != 2 || c.Pids[1] != 2 || c.Ncomms != 1 || c.Comms[0][4] != 'x' || c.SelfPid != 7 {
		t.Errorf("process filters: %+v", c)
	}
	if c.Ncidrs != 2 || c.Cidrs[0].Family != unix.AF_INET || c.Cidrs[0].Prefixlen != 15 ||
		c.Cidrs[0].Addr != [16]uint8{198, 18} || c.Cidrs[1].Family != unix.AF_INET6 || c.Cidrs[1].Addr[0] != 0xfd {
		t.Errorf("CIDRs not masked or not encoded: %+v", c.Cidrs[:2])
	}
	if c.RetransmitHasErr != 1 || c.SendResetHasReason != 0 || c.AllStateChanges != 1 {
		t.Errorf("flags: %+v", c)
	}
}

func TestFiltersValidate(t *testing.T) {
	f := session.Filters{PIDs: make([]uint32, MaxPIDs+1)}
	if err := ValidateFilters(&f); err == nil {
		t.Error("accepted more pids than the kernel holds")
	}
	f = session.Filters{Comms: []string{"a-name-longer-than-15"}}
	if err := ValidateFilters(&f); err == nil {
		t.Error("accepted a comm the kernel can never match")
	}
}
