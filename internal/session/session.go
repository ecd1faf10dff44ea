// Package session describes one tracing session: what was asked for (the
// options and filters), how this kernel serves each layer (the hook plan)
// and where it ran. The loader produces the plan, `check` prints it, a
// recording's header stores the description and `report` reads it back.
// It needs neither Linux nor BPF, so recordings can be read anywhere.
package session

import (
	"io"
	"strings"
	"time"
)

// Options configure a live session.
type Options struct {
	Filters   Filters
	BTFPath   string // kernel BTF to use instead of /sys/kernel/btf/vmlinux
	ReadyFile string // written once every program is attached
	// ReadyLines are more "key\tvalue" lines for the ready file, after
	// each layer's "layer\thook" (serve's "listen\tADDR").
	ReadyLines []string
	Duration   time.Duration // 0: until stopped
	// Disable names hook prefixes the planner must skip ("fexit",
	// "tp_btf/sock_send_length", "kretprobe"), to exercise fallbacks.
	Disable []string
	// AllStateChanges streams connects and closes of every matching
	// socket, not only of sockets where something failed.
	AllStateChanges bool
	// CountSends counts successful sends per socket and destination, for
	// rates. It puts a socket-storage lookup on every successful send, so
	// live mode leaves it off.
	CountSends bool
	// NoTraffic keeps no per-destination traffic (connections, bytes and
	// segments, added at each socket's close). serve exports none, and
	// on a node the map would hold a key for every process and
	// destination it ever had.
	NoTraffic bool
	// NoSyscallLayer leaves sys_exit unhooked: failed sends are seen at
	// the socket layer only, at about half the cost on the success path,
	// and errors made before the socket layer (seccomp or LSM denials,
	// injected errnos, bad arguments) are not seen.
	NoSyscallLayer bool
	// RingMiB sizes the ring buffer in MiB (a power of two); 0 keeps the
	// object's default. It is how long a burst the reader may fall behind
	// before events are counted lost.
	RingMiB uint32
	// DropEventsPerSocket limits the drop events a socket streams per
	// second (the kernel's totals count every drop); 0 keeps
	// DefaultDropEvents, NoDropLimit streams them all.
	DropEventsPerSocket uint32
	// EventBatch lets events wait in the ring buffer up to this long, so
	// that the reader wakes once per batch rather than once per event (a
	// long-running agent's CPU); 0 hands each event over at once.
	EventBatch time.Duration
	// Notices receives what a person should know while the session
	// runs (events being lost); nil: nowhere.
	Notices io.Writer
}

// Description is what a session was, as a recording's header keeps it:
// everything needed to read its events later on another machine.
type Description struct {
	SendtraceVersion string `json:"sendtrace_version"`
	Hostname         string `json:"hostname"`
	KernelRelease    string `json:"kernel_release"`
	// BootTime is the wall-clock time of CLOCK_MONOTONIC zero, so that any
	// mono_ns converts to wall time as BootTime + mono_ns.
	BootTime    time.Time `json:"boot_time"`
	StartTime   time.Time `json:"start_time"`
	StartMonoNS uint64    `json:"start_mono_ns"`
	// Duration is what --duration asked for; empty when the session ran
	// until it was stopped.
	Duration string  `json:"duration,omitempty"`
	Filters  Filters `json:"filters"`
	Hooks    Plan    `json:"hooks"`
	Netns    Netns   `json:"netns"`
	// Sysctls maps dotted names ("net.ipv4.tcp_retries2") to their values
	// with runs of whitespace collapsed to one space ("4096 16384 4194304").
	Sysctls map[string]string `json:"sysctls"`
	// SysctlsMissing lists the names that could not be read, so that a
	// sysctl absent on one kernel is not mistaken for a difference.
	SysctlsMissing []string `json:"sysctls_missing,omitempty"`
}

// Wall converts a CLOCK_MONOTONIC timestamp of the session to wall time.
func (d *Description) Wall(mono uint64) time.Time {
	return d.BootTime.Add(time.Duration(mono))
}

// Netns says which network namespace the sysctls were read in.
type Netns struct {
	// PID is the process whose namespace was used; 0 means the recorder's
	// own namespace.
	PID   uint32 `json:"pid,omitempty"`
	Inode uint64 `json:"inode,omitempty"`
	// Note explains a choice the reader should know about, such as
	// filtered processes living in different namespaces.
	Note string `json:"note,omitempty"`
}

// DefaultDropEvents is how many drop events a socket streams per second
// before the rest are only counted: enough to see where its packets die,
// few enough that a drop storm cannot crowd out the other events.
// NoDropLimit streams them all.
const (
	DefaultDropEvents = 1000
	NoDropLimit       = ^uint32(0)
)

// HookDisabled reports whether disable (--disable-hook) names hook by a
// prefix of it: "fexit" disables every fexit program.
func HookDisabled(hook string, disable []string) bool {
	for _, d := range disable {
		if d != "" && strings.HasPrefix(hook, d) {
			return true
		}
	}
	return false
}
