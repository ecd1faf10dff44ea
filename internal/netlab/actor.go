package netlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil"

	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
)

// ActorPackage is the import path of the actor command.
const ActorPackage = "github.com/sendtrace/sendtrace/internal/netlab/actor"

// BuildActor builds the actor into dir, statically, and returns the
// binary's path; $SENDTRACE_ACTOR names a prebuilt one instead (the VM
// kernel matrix has no Go toolchain).
func BuildActor(dir string) (string, error) {
	return testutil.Build(dir, "SENDTRACE_ACTOR", ActorPackage)
}

// BuildBinaries builds sendtrace and the actor into dir, as every scenario
// package's TestMain does, and sets *sendtrace and *actor to their paths.
func BuildBinaries(dir string, sendtrace, actor *string) (err error) {
	if *sendtrace, err = testutil.BuildSendtrace(dir); err != nil {
		return err
	}
	*actor, err = BuildActor(dir)
	return err
}

// Actor is one running actor process in a namespace.
type Actor struct {
	NS   *NS
	Cmd  *exec.Cmd
	Ctl  string // phase directory
	Args []string

	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error // from Cmd.Wait
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// StartActor starts bin (from BuildActor) in the namespace with args (the
// role first: "server" or "client", then its flags). A phase directory is
// added as -ctl. The process is killed in t's cleanup if it still runs.
func (n *NS) StartActor(t testing.TB, bin string, args ...string) *Actor {
	t.Helper()
	return n.startActor(t, "", bin, args...)
}

// StartActorInCgroup is StartActor with the actor born in the cgroup v2
// directory cgroup (clone3's CLONE_INTO_CGROUP), so that each socket it
// makes, its listener too, is that cgroup's from the first.
func (n *NS) StartActorInCgroup(t testing.TB, cgroup, bin string, args ...string) *Actor {
	t.Helper()
	return n.startActor(t, cgroup, bin, args...)
}

func (n *NS) startActor(t testing.TB, cgroup, bin string, args ...string) *Actor {
	t.Helper()
	if len(args) == 0 {
		t.Fatal("StartActor: no role")
	}
	ctl := t.TempDir()
	full := append([]string{args[0], "-ctl", ctl}, args[1:]...)
	a := &Actor{NS: n, Ctl: ctl, Args: full, done: make(chan struct{})}
	a.Cmd = n.Command(context.Background(), bin, full...)
	a.Cmd.Stdout = lockedWriter{&a.mu, &a.stdout}
	a.Cmd.Stderr = lockedWriter{&a.mu, &a.stderr}
	// An actor must not outlive a killed test (ip netns exec execs in
	// place, so the actor itself carries this).
	a.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if cgroup != "" {
		dir, err := os.Open(cgroup)
		if err != nil {
			t.Fatalf("start actor in cgroup: %v", err)
		}
		defer dir.Close()
		a.Cmd.SysProcAttr.UseCgroupFD, a.Cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
	}
	if err := a.Cmd.Start(); err != nil {
		t.Fatalf("start actor %v in %s: %v", full, n.Name, err)
	}
	go func() {
		err := a.Cmd.Wait()
		a.mu.Lock()
		a.err = err
		a.mu.Unlock()
		close(a.done)
	}()
	t.Cleanup(func() {
		select {
		case <-a.done:
		default:
			_ = a.Cmd.Process.Kill()
			select {
			case <-a.done:
			case <-time.After(10 * time.Second):
				t.Errorf("actor %d did not exit after SIGKILL", a.PID())
			}
		}
	})
	return a
}

// PID is the actor's pid (ip netns exec execs in place, so it is the
// actor's own; Phase.PID confirms it).
func (a *Actor) PID() int { return a.Cmd.Process.Pid }

// Output returns what the actor printed so far.
func (a *Actor) Output() (stdout, stderr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stdout.String(), a.stderr.String()
}

func (a *Actor) String() string {
	return fmt.Sprintf("actor pid %d in %s (%s)", a.PID(), a.NS.Name, strings.Join(a.Args, " "))
}

// WaitPhase waits until the actor announces phase name. It fails at once
// if the actor exits first.
func (a *Actor) WaitPhase(ctx context.Context, name string) (*actorreport.Phase, error) {
	var pause time.Duration
	for {
		p, err := actorreport.ReadPhase(a.Ctl, name)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		pause = actorreport.NextPause(pause)
		select {
		case <-a.done:
			// It may have written the phase just before exiting.
			if p, err := actorreport.ReadPhase(a.Ctl, name); err == nil {
				return p, nil
			}
			out, errOut := a.Output()
			return nil, fmt.Errorf("%v exited (%v) before phase %q\nstdout: %s\nstderr: %s", a, a.err, name, out, errOut)
		case <-ctx.Done():
			out, errOut := a.Output()
			return nil, fmt.Errorf("%v: phase %q not reached: %w\nstdout: %s\nstderr: %s", a, name, ctx.Err(), out, errOut)
		case <-time.After(pause):
		}
	}
}

// Release lets the actor continue past phase name.
func (a *Actor) Release(name string) error { return actorreport.Release(a.Ctl, name) }

// Wait waits for the actor to exit and returns its report.
func (a *Actor) Wait(ctx context.Context) (*actorreport.Report, error) {
	select {
	case <-a.done:
	case <-ctx.Done():
		out, errOut := a.Output()
		return nil, fmt.Errorf("%v still running: %w\nstdout: %s\nstderr: %s", a, ctx.Err(), out, errOut)
	}
	out, errOut := a.Output()
	if a.err != nil {
		return nil, fmt.Errorf("%v: %w\nstdout: %s\nstderr: %s", a, a.err, out, errOut)
	}
	var r actorreport.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("%v: report: %w\nstdout: %s\nstderr: %s", a, err, out, errOut)
	}
	return &r, nil
}

// Stop asks the actor to end (SIGTERM), as a server is, and returns its
// report.
func (a *Actor) Stop(ctx context.Context) (*actorreport.Report, error) {
	if err := a.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return nil, err
	}
	return a.Wait(ctx)
}
