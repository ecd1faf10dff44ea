package record_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// recordPython runs a Python client script in ns with args and, last, a go
// file it waits for; records it by its pid (with recArgs first) into path
// from before it starts; and returns what it printed, once it has exited
// and the recorder has stopped with it.
func recordPython(t *testing.T, ctx context.Context, ns *netlab.NS, path, script string, recArgs []string, args ...string) string {
	t.Helper()
	goFile := filepath.Join(t.TempDir(), "go")
	var out testutil.LockedBuffer
	cl := ns.Command(context.Background(), "python3", append(append([]string{"-c", script}, args...), goFile)...)
	cl.Stdout, cl.Stderr = &out, &out
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cl.Wait() }()
	t.Cleanup(func() { _ = cl.Process.Kill() })

	rec := startRecorder(t, ctx, path, nil, append(recArgs, "--pid", strconv.Itoa(cl.Process.Pid))...)
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("python client: %v: %s", err, out.Bytes())
		}
	case <-ctx.Done():
		t.Fatal("python client still running")
	}
	rec.wait(t, ctx)
	return strings.TrimSpace(string(out.Bytes()))
}
