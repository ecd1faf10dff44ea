// Package scenario_test runs the built sendtrace binary against real
// faults made in throwaway network namespaces (internal/netlab) and checks
// its JSON Lines output against what the kernel told the application (the
// actor's own report) and the namespace's SNMP counters.
package scenario_test

import (
	"context"
	"os"
	"strconv"
	"strings"
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
	testutil.RunMain(m, func(dir string) error {
		return netlab.BuildBinaries(dir, &sendtraceBin, &actorBin)
	})
}

const (
	port = 9000
	// tracerReady bounds how long loading and attaching may take. It is a
	// hang guard, not a speed requirement.
	tracerReady = 60 * time.Second
	tracerStop  = 30 * time.Second
)

// extraArgs (SENDTRACE_ARGS) adds flags to every run, e.g. "--disable-hook
// fexit" to put the kretprobe fallback through the same scenarios.
var extraArgs = strings.Fields(os.Getenv("SENDTRACE_ARGS"))

// Tracer is one running `sendtrace -o json`.
type Tracer struct {
	*testutil.Sendtrace
	// Stderr is the exit summary, once stopped.
	Stderr string
}

// StartTracer starts sendtrace with -o json and a ready file, plus args,
// and returns once the ready file exists (every probe attached).
func StartTracer(t *testing.T, ctx context.Context, args ...string) *Tracer {
	t.Helper()
	base := []string{"-o", "json"}
	base = append(base, extraArgs...)
	return &Tracer{Sendtrace: testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, append(base, args...)...)}
}

// Stop interrupts sendtrace as a user would (SIGINT), waits for it and
// returns its events, sorted by mono_ns and checked against the schema.
func (tr *Tracer) Stop(t *testing.T) []*Event {
	t.Helper()
	stdout, stderr := tr.Sendtrace.Stop(t, tracerStop)
	tr.Stderr = string(stderr)
	t.Logf("sendtrace stderr (summary):\n%s", stderr)
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

// UntracedSegs reads, from the exit summary's kernel totals, the
// retransmitted segments the kernel counted with no event (the
// "retransmit/untraced" rows' SEGS column).
func (tr *Tracer) UntracedSegs(t *testing.T) int64 {
	t.Helper()
	var n int64
	for _, line := range strings.Split(tr.Stderr, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 9 || strings.TrimSpace(cells[2]) != "retransmit/untraced" {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(cells[5]), 10, 64)
		if err != nil {
			t.Fatalf("untraced row %q: %v", line, err)
		}
		n += v
	}
	return n
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
