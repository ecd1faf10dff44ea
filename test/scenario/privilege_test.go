package scenario_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// nobody is the unprivileged user the least-privilege runs use.
const nobody = "65534"

// asNobody runs bin as uid/gid 65534 with no capabilities but those in
// setprivCaps (extra setpriv flags).
func asNobody(ctx context.Context, bin string, setprivCaps []string, args ...string) *exec.Cmd {
	full := append([]string{"--reuid=" + nobody, "--regid=" + nobody, "--clear-groups"}, setprivCaps...)
	full = append(full, bin)
	return exec.CommandContext(ctx, "setpriv", append(full, args...)...)
}

var setcapAdvice = regexp.MustCompile(`setcap (\S+) sendtrace\)`)

// TestLeastPrivilege follows the not-root message as a user would: the
// capabilities it names must be enough to trace, and the setcap command
// it gives must leave a binary that starts as an ordinary user, on a
// machine whose bounding set lacks CAP_SYS_RESOURCE as well as elsewhere.
func TestLeastPrivilege(t *testing.T) {
	ctx := scenarioContext(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	dir, bin := testutil.NobodyCopy(t, sendtraceBin)

	var stderr bytes.Buffer
	cmd := asNobody(ctx, bin, []string{"--inh-caps=-all"}, "--duration", "1s")
	cmd.Stderr = &stderr
	err := cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("without capabilities: %v, want exit status 2; stderr: %s", err, msg)
	}
	t.Logf("without capabilities: %s", msg)
	if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "grant CAP_BPF and CAP_PERFMON") {
		t.Errorf("want one line naming CAP_BPF and CAP_PERFMON, got %q", msg)
	}
	if strings.Contains(strings.ToLower(msg), "sys_resource") {
		t.Errorf("the advice asks for CAP_SYS_RESOURCE, which tracing does not need: %q", msg)
	}
	m := setcapAdvice.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no setcap command in %q", msg)
	}

	t.Run("ambient", func(t *testing.T) {
		caps := []string{"--inh-caps=-all,+bpf,+perfmon", "--ambient-caps=-all,+bpf,+perfmon"}
		traceAsNobody(t, ctx, dir, bin, caps)
	})
	t.Run("setcap", func(t *testing.T) {
		// The advice, applied to a copy exactly as written.
		if out, err := exec.CommandContext(ctx, "setcap", m[1], bin).CombinedOutput(); err != nil {
			t.Fatalf("setcap %s: %v: %s", m[1], err, out)
		}
		traceAsNobody(t, ctx, dir, bin, []string{"--inh-caps=-all"})
	})
}

// traceAsNobody starts sendtrace as user 65534, makes one failed send
// (EDESTADDRREQ: a UDP socket with no destination, so no packet leaves)
// and checks that sendtrace reported it with this process as the sender.
func traceAsNobody(t *testing.T, ctx context.Context, dir, bin string, caps []string) {
	ready := filepath.Join(dir, "ready")
	os.Remove(ready)
	var stdout, stderr testutil.LockedBuffer
	cmd := asNobody(ctx, bin, caps, "-o", "json", "--errno", "EDESTADDRREQ", "--ready-file", ready)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
	}()
	wctx, cancel := context.WithTimeout(ctx, tracerReady)
	defer cancel()
	err := testutil.Poll(wctx, 20*time.Millisecond, func() (bool, error) {
		select {
		case err := <-done:
			done <- err
			return false, fmt.Errorf("exited before it was ready: %v", err)
		default:
		}
		_, err := os.Stat(ready)
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("sendtrace as uid %s with %v never became ready: %v\nstderr: %s", nobody, caps, err, stderr.Bytes())
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Send(fd, []byte("x"), 0); !errors.Is(err, unix.EDESTADDRREQ) {
		t.Fatalf("send on an unconnected UDP socket: %v, want EDESTADDRREQ", err)
	}
	var mine []*Event
	err = testutil.Poll(wctx, 50*time.Millisecond, func() (bool, error) {
		evs, _, _ := ParseEvents(stdout.Bytes())
		mine = Select(evs, func(e *Event) bool {
			return e.Kind == "send_error" && e.ErrnoName == "EDESTADDRREQ" && e.PID == uint32(os.Getpid())
		})
		return len(mine) > 0, nil
	})
	if err != nil {
		t.Fatalf("sendtrace as uid %s with %v did not report this process's EDESTADDRREQ: %v\nstdout: %s\nstderr: %s",
			nobody, caps, err, stdout.Bytes(), stderr.Bytes())
	}
	t.Logf("as uid %s with %v: %s", nobody, caps, mine[0].Raw)
}
