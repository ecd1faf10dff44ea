// Package testutil holds small helpers shared by sendtrace's tests.
package testutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil/timescale"
)

// RequireRoot fails t when the process is not root: network namespaces,
// nftables and BPF all need root, and CI runs as root. Only a run that
// asks for the unprivileged tests (SENDTRACE_UNPRIVILEGED, as make
// test-unit does) skips instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	// A privileged test that skips proves nothing, so without root it
	// fails, unless the run asked for the unprivileged tests only.
	if os.Getenv("SENDTRACE_UNPRIVILEGED") != "" {
		t.Skip("needs root (creates network namespaces, nftables rulesets and BPF programs); SENDTRACE_UNPRIVILEGED is set")
	}
	t.Fatal("needs root: creates network namespaces, nftables rulesets and BPF programs; run as root (sudo make test), or set SENDTRACE_UNPRIVILEGED=1 to run only the unprivileged tests")
}

// Context returns a context that ends at d from now (stretched by
// $VMTEST_TIME_SCALE on a slow machine, see package timescale) or at the
// test's own deadline (go test -timeout), whichever is sooner, so every
// wait in a test is bounded even when a caller forgets its own limit.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	deadline := time.Now().Add(timescale.Scale(d))
	if td, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := td.Deadline(); ok && dl.Add(-5*time.Second).Before(deadline) {
			// Leave time for cleanups to run before go test kills the binary.
			deadline = dl.Add(-5 * time.Second)
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// ErrTimeout is returned by Poll when the context ends before cond holds.
var ErrTimeout = errors.New("condition not met before the deadline")

// Poll calls cond every interval until it returns true or an error, or
// until ctx ends.
func Poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ErrTimeout
		case <-tick.C:
		}
	}
}

// WaitFile waits until path exists.
func WaitFile(ctx context.Context, path string) error {
	return Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		_, err := os.Stat(path)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	})
}

// NobodyCopy copies the binary at src into a fresh directory that user
// 65534 can enter and write (a ready file goes there too), so tests can
// run it unprivileged or set file capabilities on the copy without
// touching the original.
func NobodyCopy(t testing.TB, src string) (dir, bin string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sendtrace-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}
