// Package report is the contract between the test actor (a separate
// process in a lab namespace) and the tests that drive it: the JSON the
// actor prints, and the files through which the two step through phases.
//
// The actor prints its own observations, so tests can compare what
// sendtrace claims with what the kernel told the application.
package actorreport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Report is the single JSON object the actor prints on stdout when it ends.
type Report struct {
	Role    string   `json:"role"` // "client" or "server"
	Mode    string   `json:"mode"`
	PID     int      `json:"pid"`
	Comm    string   `json:"comm"`
	Sockets []Socket `json:"sockets"`
	// StartMono and EndMono bracket everything the actor did after it was
	// released, in CLOCK_MONOTONIC ns (the clock of bpf_ktime_get_ns).
	StartMono uint64 `json:"start_mono_ns"`
	EndMono   uint64 `json:"end_mono_ns"`
	// Error is set when the actor could not carry out its scenario (a setup
	// step failed); the send results it did collect are still reported.
	Error string `json:"error,omitempty"`
}

// Socket is one socket the actor used.
type Socket struct {
	FD     int    `json:"fd"`
	Cookie uint64 `json:"cookie"` // SO_COOKIE
	Proto  string `json:"proto"`  // "tcp" or "udp"
	Local  string `json:"local"`  // netip.AddrPort form
	Remote string `json:"remote"` // netip.AddrPort form; empty for a listener
	// AwaitedError is the poll revents seen while waiting for the kernel to
	// flag an asynchronous error (a reset, an ICMP error), 0 when not
	// waited for.
	AwaitedError int    `json:"awaited_revents,omitempty"`
	Sends        []Send `json:"sends,omitempty"`
	// BytesRead is what a server read from this socket.
	BytesRead int64 `json:"bytes_read,omitempty"`
}

// Send is one send-family syscall and what it returned.
type Send struct {
	Syscall   string `json:"syscall"` // "sendto", "write", "sendmsg"
	Size      int    `json:"size"`    // bytes requested
	N         int    `json:"n"`       // bytes sent, -1 on error
	Errno     int    `json:"errno"`   // 0 on success
	ErrnoName string `json:"errno_name,omitempty"`
	// MonoBefore and MonoAfter bracket the syscall (CLOCK_MONOTONIC ns).
	MonoBefore uint64    `json:"mono_before_ns"`
	MonoAfter  uint64    `json:"mono_after_ns"`
	Time       time.Time `json:"time"`
}

// Failed returns the sends that returned an error, in order.
func (s *Socket) Failed() []Send {
	var out []Send
	for _, x := range s.Sends {
		if x.Errno != 0 {
			out = append(out, x)
		}
	}
	return out
}

// Phase is what the actor writes to DIR/NAME.ready when it reaches a phase
// and starts to wait for DIR/NAME.go.
type Phase struct {
	Name    string   `json:"name"`
	PID     int      `json:"pid"`
	Sockets []Socket `json:"sockets,omitempty"`
}

// ReadyPath is the file the actor creates when it reaches phase name.
func ReadyPath(dir, name string) string { return filepath.Join(dir, name+".ready") }

// GoPath is the file that releases the actor from phase name.
func GoPath(dir, name string) string { return filepath.Join(dir, name+".go") }

// WritePhase announces p. The file appears complete or not at all, so a
// reader never sees half a JSON object.
func WritePhase(dir string, p Phase) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	tmp := ReadyPath(dir, p.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, ReadyPath(dir, p.Name))
}

// ReadPhase reads the announcement of phase name, if it has been made.
func ReadPhase(dir, name string) (*Phase, error) {
	b, err := os.ReadFile(ReadyPath(dir, name))
	if err != nil {
		return nil, err
	}
	var p Phase
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("phase %s: %w", name, err)
	}
	return &p, nil
}

// Release lets the actor continue past phase name.
func Release(dir, name string) error {
	return os.WriteFile(GoPath(dir, name), nil, 0o644)
}

// WaitGo blocks until phase name is released or ctx ends.
func WaitGo(ctx context.Context, dir, name string) error {
	path := GoPath(dir, name)
	var pause time.Duration
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		pause = NextPause(pause)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// NextPause is how long to wait before looking for a phase file again,
// after a pause of last (0 at first): 5 ms, doubling up to 100 ms. A
// process parked at a phase may wait for as long as the test takes to
// start a tracer; looking every 5 ms all that time costs a few percent of
// a host CPU per process, and under qemu's emulation (TCG) a large part
// of a guest CPU, taken from the tracer being started.
func NextPause(last time.Duration) time.Duration {
	return min(max(2*last, 5*time.Millisecond), 100*time.Millisecond)
}
