package testutil

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

	"github.com/sendtrace/sendtrace/internal/testutil/timescale"
)

// Build builds a main package into dir and returns the binary's path.
// env names a variable that, when set, holds a prebuilt binary to use
// instead: the VM kernel matrix runs test binaries where there is no Go.
func Build(dir, env, pkg string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// RunMain is a TestMain body for tests of built binaries: build puts them
// in a temporary directory, then the tests run. A failed build fails the
// package; these tests never skip for a missing binary.
func RunMain(m *testing.M, build func(dir string) error) {
	dir, err := os.MkdirTemp("", "sendtrace-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// BuildSendtrace builds ./cmd/sendtrace, or takes $SENDTRACE_BIN.
func BuildSendtrace(dir string) (string, error) {
	return Build(dir, "SENDTRACE_BIN", "github.com/sendtrace/sendtrace/cmd/sendtrace")
}

// LockedBuffer collects a child process's output while tests read it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// Sendtrace is one running sendtrace under test.
type Sendtrace struct {
	Args           []string
	ReadyFile      string // the --ready-file it was given
	cmd            *exec.Cmd
	stdout, stderr LockedBuffer
	done           chan struct{}
	err            error
	exited         time.Time // when it exited, once done is closed
}

// StartSendtrace runs bin with a --ready-file and args, and returns once
// every probe is attached. It fails the test if sendtrace exits first or
// is not ready within ready, stretched by $VMTEST_TIME_SCALE (a hang
// guard, not a speed requirement). The time it took is logged.
func StartSendtrace(t *testing.T, ctx context.Context, bin string, ready time.Duration, args ...string) *Sendtrace {
	t.Helper()
	readyFile := filepath.Join(t.TempDir(), "ready")
	s := &Sendtrace{Args: append([]string{"--ready-file", readyFile}, args...), ReadyFile: readyFile, done: make(chan struct{})}
	s.cmd = exec.Command(bin, s.Args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	// A tracer must not outlive a killed test run.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sendtrace: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		s.exited = time.Now()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	ready = timescale.Scale(ready)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, ready)
	defer cancel()
	err := Poll(wctx, 20*time.Millisecond, func() (bool, error) {
		if _, err := os.Stat(readyFile); err == nil {
			return true, nil
		}
		select {
		case <-s.done:
			return false, fmt.Errorf("sendtrace exited before it was ready: %v", s.err)
		default:
			return false, nil
		}
	})
	if err != nil {
		t.Fatalf("sendtrace %s: %v (waited %v, limit %v)\nstderr:\n%s", strings.Join(s.Args, " "), err,
			time.Since(start).Round(time.Millisecond), ready, s.stderr.Bytes())
	}
	t.Logf("sendtrace %s ready in %v", strings.Join(s.Args, " "), time.Since(start).Round(time.Millisecond))
	return s
}

// Stdout is what sendtrace has written to stdout so far.
func (s *Sendtrace) Stdout() []byte { return s.stdout.Bytes() }

// PID is the running sendtrace's process id.
func (s *Sendtrace) PID() int { return s.cmd.Process.Pid }

// Stderr is what sendtrace has written to stderr so far.
func (s *Sendtrace) Stderr() []byte { return s.stderr.Bytes() }

// Exited says whether sendtrace has exited, and how.
func (s *Sendtrace) Exited() (bool, error) {
	select {
	case <-s.done:
		return true, s.err
	default:
		return false, nil
	}
}

// Stop interrupts sendtrace as a user would (SIGINT), waits at most
// within (stretched by $VMTEST_TIME_SCALE) for it to exit, and returns
// what it wrote. A sendtrace that does not exit, or exits with an error,
// fails the test.
func (s *Sendtrace) Stop(t *testing.T, within time.Duration) (stdout, stderr []byte) {
	t.Helper()
	within = timescale.Scale(within)
	sent := time.Now()
	select {
	case <-s.done:
		// --pid and --duration end a session by themselves.
		t.Logf("sendtrace had exited %v before SIGINT", sent.Sub(s.exited).Round(time.Millisecond))
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("SIGINT sendtrace: %v", err)
	}
	select {
	case <-s.done:
		if s.exited.After(sent) {
			t.Logf("sendtrace exited %v after SIGINT", s.exited.Sub(sent).Round(time.Millisecond))
		}
	case <-time.After(within):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("sendtrace did not exit within %v of SIGINT", within)
	}
	if s.err != nil {
		t.Errorf("sendtrace exited with %v after SIGINT", s.err)
	}
	return s.stdout.Bytes(), s.stderr.Bytes()
}
