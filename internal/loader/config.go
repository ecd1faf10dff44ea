package loader

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Limits of the in-kernel filters: the sizes of the config's arrays.
var (
	MaxPIDs    = len(sendtraceConfig{}.Pids)
	MaxComms   = len(sendtraceConfig{}.Comms)
	MaxCgroups = len(sendtraceConfig{}.Cgroups)
	MaxCIDRs   = len(sendtraceConfig{}.Cidrs)
	MaxPorts   = len(sendtraceConfig{}.Ports)
	MaxErrnos  = len(sendtraceConfig{}.Errnos)
)

// ValidateFilters reports filters the kernel side cannot hold.
func ValidateFilters(f *session.Filters) error {
	check := func(name string, n, max int) error {
		if n > max {
			return fmt.Errorf("too many %s filters (%d): at most %d", name, n, max)
		}
		return nil
	}
	for _, err := range []error{
		check("--pid", len(f.PIDs), MaxPIDs), check("--comm", len(f.Comms), MaxComms),
		check("--cgroup", len(f.Cgroups), MaxCgroups), check("--dst", len(f.Dsts), MaxCIDRs),
		check("--port", len(f.Ports), MaxPorts), check("--errno", len(f.Errnos), MaxErrnos),
	} {
		if err != nil {
			return err
		}
	}
	for _, c := range f.Comms {
		if len(c) > 15 {
			return fmt.Errorf("--comm %q is longer than the kernel's 15-byte task name: give its first 15 bytes", c)
		}
	}
	return nil
}

func buildConfig(cfg Config, t *Programs) (*sendtraceConfig, error) {
	f := cfg.Filters
	if err := ValidateFilters(&f); err != nil {
		return nil, err
	}
	c := &sendtraceConfig{SelfPid: cfg.SelfPID, CookieSalt: cookieSalt()}
	c.Npids = uint32(len(f.PIDs))
	copy(c.Pids[:], f.PIDs)
	c.Ncomms = uint32(len(f.Comms))
	for i, s := range f.Comms {
		for j := 0; j < len(s); j++ {
			c.Comms[i][j] = int8(s[j])
		}
	}
	c.Ncgroups = uint32(len(f.Cgroups))
	copy(c.Cgroups[:], f.Cgroups)
	c.Ncidrs = uint32(len(f.Dsts))
	for i, p := range f.Dsts {
		p = p.Masked()
		a := p.Addr()
		if a.Is4() {
			c.Cidrs[i].Family = uint8(events.AFInet)
			b := a.As4()
			copy(c.Cidrs[i].Addr[:], b[:])
		} else {
			c.Cidrs[i].Family = uint8(events.AFInet6)
			b := a.As16()
			copy(c.Cidrs[i].Addr[:], b[:])
		}
		c.Cidrs[i].Prefixlen = uint8(p.Bits())
	}
	c.Nports = uint32(len(f.Ports))
	copy(c.Ports[:], f.Ports)
	c.Nerrnos = uint32(len(f.Errnos))
	copy(c.Errnos[:], f.Errnos)
	c.RetransmitHasErr = b2u(t.RetransmitHasErr)
	c.DropConsumed = t.DropNames.consumedReason()
	c.DropTcpClose = t.DropNames.tcpCloseReason()
	c.DropLimit = cfg.DropEventsPerSocket
	if c.DropLimit == 0 {
		c.DropLimit = session.DefaultDropEvents
	}
	if cfg.EventBatch > 0 {
		c.WakeupBytes = wakeupBytes(cfg.RingMiB)
	}
	c.SendResetHasReason = b2u(t.SendResetHasReason)
	c.CountSends = b2u(cfg.CountSends)
	c.KeepTraffic = b2u(!cfg.NoTraffic)
	c.AllStateChanges = b2u(cfg.AllStateChanges || len(f.PIDs) > 0 || len(f.Comms) > 0 || len(f.Cgroups) > 0)
	return c, nil
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// defaultRingMiB is the size of the object's events map.
const defaultRingMiB = 8

// wakeupBytes is how much a batched ring buffer holds before the reader is
// woken: an eighth of it, so a storm still leaves the reader most of the
// buffer to catch up in.
func wakeupBytes(ringMiB uint32) uint32 {
	if ringMiB == 0 {
		ringMiB = defaultRingMiB
	}
	return ringMiB << 20 / 8
}

// cookieSalt hides kernel addresses in the legacy object's socket ids.
func cookieSalt() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
