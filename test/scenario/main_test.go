// Package scenario_test runs the built sendtrace binary against real
// faults made in throwaway network namespaces (internal/netlab) and checks
// its JSON Lines output against what the kernel told the application (the
// actor's own report) and the namespace's SNMP counters.
package scenario_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

var (
	sendtraceBin string
	actorBin     string
)

// TestMain builds the binaries once. A build failure fails the package:
// these tests are never skipped for a missing binary.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sendtrace-scenario-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		// Prebuilt binaries, for machines with no Go toolchain (the VM
		// kernel matrix runs this test binary inside each guest).
		sendtraceBin, actorBin = os.Getenv("SENDTRACE_BIN"), os.Getenv("SENDTRACE_ACTOR")
		if sendtraceBin == "" {
			sendtraceBin = filepath.Join(dir, "sendtrace")
			cmd := exec.Command("go", "build", "-o", sendtraceBin, "github.com/sendtrace/sendtrace/cmd/sendtrace")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "go build ./cmd/sendtrace: %v\n%s", err, out)
				return 1
			}
		}
		if actorBin == "" {
			if actorBin, err = netlab.BuildActor(dir); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

const (
	port = 9000
	// tracerReady bounds how long loading and attaching may take. It is a
	// hang guard, not a speed requirement.
	tracerReady = 60 * time.Second
	tracerStop  = 30 * time.Second
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// Tracer is one running `sendtrace -o json`.
type Tracer struct {
	Args           []string
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{}
	err            error
}

// StartTracer starts sendtrace with -o json and a ready file, plus args,
// and returns once the ready file exists (every probe attached).
func StartTracer(t *testing.T, ctx context.Context, args ...string) *Tracer {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	base := []string{"-o", "json", "--ready-file", ready}
	// SENDTRACE_ARGS adds flags to every run, e.g. "--disable-hook fexit"
	// to put the kretprobe fallback through the same scenarios.
	base = append(base, strings.Fields(os.Getenv("SENDTRACE_ARGS"))...)
	tr := &Tracer{Args: append(base, args...), done: make(chan struct{})}
	tr.cmd = exec.Command(sendtraceBin, tr.Args...)
	tr.cmd.Stdout, tr.cmd.Stderr = &tr.stdout, &tr.stderr
	// A tracer must not outlive a killed test run.
	tr.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := tr.cmd.Start(); err != nil {
		t.Fatalf("start sendtrace: %v", err)
	}
	go func() {
		tr.err = tr.cmd.Wait()
		close(tr.done)
	}()
	t.Cleanup(func() {
		select {
		case <-tr.done:
		default:
			_ = tr.cmd.Process.Kill()
			<-tr.done
		}
	})
	wctx, cancel := context.WithTimeout(ctx, tracerReady)
	defer cancel()
	err := testutil.Poll(wctx, 20*time.Millisecond, func() (bool, error) {
		if _, err := os.Stat(ready); err == nil {
			return true, nil
		}
		select {
		case <-tr.done:
			return false, fmt.Errorf("sendtrace exited before it was ready: %v", tr.err)
		default:
			return false, nil
		}
	})
	if err != nil {
		t.Fatalf("sendtrace %s: %v\nstderr:\n%s", strings.Join(tr.Args, " "), err, tr.stderr.Bytes())
	}
	t.Logf("sendtrace %s ready", strings.Join(tr.Args, " "))
	return tr
}

// Stop interrupts sendtrace as a user would (SIGINT), waits for it and
// returns its events, sorted by mono_ns and checked against the schema.
func (tr *Tracer) Stop(t *testing.T) []*Event {
	t.Helper()
	if err := tr.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("SIGINT sendtrace: %v", err)
	}
	select {
	case <-tr.done:
	case <-time.After(tracerStop):
		_ = tr.cmd.Process.Kill()
		<-tr.done
		t.Errorf("sendtrace did not exit within %v of SIGINT", tracerStop)
	}
	stdout, stderr := tr.stdout.Bytes(), tr.stderr.Bytes()
	t.Logf("sendtrace stderr (summary):\n%s", stderr)
	if tr.err != nil {
		t.Errorf("sendtrace exited with %v after SIGINT", tr.err)
	}
	evs, others, bad := ParseEvents(stdout)
	for _, b := range bad {
		t.Errorf("schema: %s", b)
	}
	for _, o := range others {
		t.Logf("non-event record: %s", o)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sendtrace stdout (%d events):\n%s", len(evs), stdout)
		}
	})
	return evs
}

// Select returns the events for which keep is true, in order.
func Select(evs []*Event, keep func(*Event) bool) []*Event {
	var out []*Event
	for _, e := range evs {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// OfKind selects kind on socket cookie.
func OfKind(evs []*Event, kind string, cookie uint64) []*Event {
	return Select(evs, func(e *Event) bool { return e.Kind == kind && e.Cookie == cookie })
}

func errnoNames(evs []*Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ErrnoName)
	}
	return out
}
