package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/outfile"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/spf13/cobra"
)

// addFilterFlags adds the in-kernel filter flags shared by every tracing
// command and returns a function that parses them.
func addFilterFlags(cmd *cobra.Command) func() (session.Filters, error) {
	var (
		pids    []string
		comms   []string
		cgroups []string
		dsts    []string
		ports   []string
		errnos  []string
	)
	fl := cmd.Flags()
	fl.StringSliceVar(&pids, "pid", nil, "only this process (thread group), async events included; repeatable")
	fl.StringSliceVar(&comms, "comm", nil, "only processes with this command name; repeatable")
	fl.StringSliceVar(&cgroups, "cgroup", nil, "only processes in this cgroup v2 id; repeatable")
	fl.StringSliceVar(&dsts, "dst", nil, "only destinations in this CIDR (v4 or v6; a bare address is a /32 or /128); repeatable")
	fl.StringSliceVar(&ports, "port", nil, "only this destination port; repeatable")
	fl.StringSliceVar(&errnos, "errno", nil, "only failures with this errno, a name (ECOMM) or number; repeatable")
	wf := addWorkloadFilterFlags(fl)
	return func() (session.Filters, error) {
		f := session.Filters{Comms: comms}
		for _, s := range pids {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil || n == 0 {
				return f, fmt.Errorf("invalid --pid %q: give the pid of a running process", s)
			}
			if err := checkPID(uint32(n)); err != nil {
				return f, err
			}
			f.PIDs = append(f.PIDs, uint32(n))
		}
		for _, s := range cgroups {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return f, fmt.Errorf("invalid --cgroup %q: give a cgroup v2 id (the inode number of its directory: stat -c %%i /sys/fs/cgroup/...)", s)
			}
			f.Cgroups = append(f.Cgroups, n)
		}
		for _, s := range ports {
			n, err := parsePort(s)
			if err != nil {
				return f, err
			}
			f.Ports = append(f.Ports, n)
		}
		for _, s := range dsts {
			p, err := parseCIDR(s)
			if err != nil {
				return f, err
			}
			f.Dsts = append(f.Dsts, p)
		}
		for _, s := range errnos {
			n, err := events.ParseErrno(s)
			if err != nil {
				return f, fmt.Errorf("invalid --errno: %w", err)
			}
			f.Errnos = append(f.Errnos, n)
		}
		if err := wf.resolve(&f); err != nil {
			return f, err
		}
		if err := validateFilters(&f); err != nil {
			return f, err
		}
		return f, nil
	}
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid --port %q: give a port from 1 to 65535", s)
	}
	return uint16(n), nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid --dst %q: give a CIDR such as 198.18.0.0/15 or an address", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid --dst %q: give a CIDR such as 198.18.0.0/15 or fd00::/8", s)
	}
	if p.Addr().Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, fmt.Errorf("invalid --dst %q: an IPv4-mapped prefix needs at least /96", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), bits)
	}
	return p.Masked(), nil
}

// traceFlags are the session flags shared by live mode and record.
type traceFlags struct {
	btf        string
	readyFile  string
	duration   string
	disable    []string
	noSyscall  bool
	ringMiB    uint32
	dropEvents uint32
	filters    func() (session.Filters, error)
}

// addTraceFlags adds the session flags; ringMiB is the command's default
// ring buffer size.
func addTraceFlags(cmd *cobra.Command, ringMiB uint32) *traceFlags {
	tf := &traceFlags{}
	tf.filters = addFilterFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&tf.btf, "btf", "", "kernel BTF file, for kernels that do not publish /sys/kernel/btf/vmlinux")
	fl.StringVar(&tf.readyFile, "ready-file", "", "write this file once every probe is attached")
	fl.StringVarP(&tf.duration, "duration", "d", "", "stop after this long (e.g. 30s, 5m)")
	fl.Uint32Var(&tf.ringMiB, "ring-mib", ringMiB, "ring buffer size in MiB (a power of two): how far the reader may fall behind in a burst before events are lost (their counts never are)")
	fl.StringSliceVar(&tf.disable, "disable-hook", nil, "do not use hooks starting with this (fexit, kretprobe, tp_btf/sock_send_length, tracepoint/cgroup_mkdir), to test fallbacks")
	fl.BoolVar(&tf.noSyscall, "no-syscall-layer", false, "do not hook every system call's exit: about half the cost on the success path, but errors made before the socket layer (seccomp or LSM denials, an injected ECOMM, bad arguments) are not seen")
	fl.Uint32Var(&tf.dropEvents, "drop-events", session.DefaultDropEvents, "drop events streamed per socket and second in a drop storm (0: all); the kernel totals count every drop")
	return tf
}

func (tf *traceFlags) options() (session.Options, error) {
	var o session.Options
	f, err := tf.filters()
	if err != nil {
		return o, err
	}
	o.Filters = f
	o.BTFPath = tf.btf
	if tf.readyFile != "" && tf.btf != "" && outfile.Same(tf.readyFile, tf.btf) {
		return o, fmt.Errorf("--ready-file %s is the --btf file this command reads: give the ready file another name", tf.readyFile)
	}
	if tf.readyFile != "" {
		// Before anything is loaded: a ready file is written only where
		// there is none or over an old one, never over a recording.
		if err := outfile.CheckReady(tf.readyFile); err != nil {
			return o, err
		}
	}
	o.ReadyFile = tf.readyFile
	o.Disable = tf.disable
	o.NoSyscallLayer = tf.noSyscall
	if tf.ringMiB == 0 || tf.ringMiB&(tf.ringMiB-1) != 0 || tf.ringMiB > 1024 {
		return o, fmt.Errorf("invalid --ring-mib %d: give a power of two from 1 to 1024", tf.ringMiB)
	}
	o.RingMiB = tf.ringMiB
	o.DropEventsPerSocket = tf.dropEvents
	if tf.dropEvents == 0 {
		o.DropEventsPerSocket = session.NoDropLimit
	}
	if tf.duration != "" {
		d, err := parseDuration(tf.duration)
		if err != nil {
			return o, err
		}
		o.Duration = d
	}
	return o, nil
}

func parseDuration(s string) (d time.Duration, err error) {
	if n, convErr := strconv.ParseFloat(s, 64); convErr == nil && n > 0 {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err = time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid --duration %q: give a positive duration such as 30s or 5m", s)
	}
	return d, nil
}
