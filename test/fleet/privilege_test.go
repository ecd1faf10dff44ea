package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// nobody is the unprivileged user the least-privilege runs use.
const nobody = "65534"

// nobodyServe is `sendtrace serve` running as uid 65534 with only the
// capabilities given.
type nobodyServe struct {
	cmd            *exec.Cmd
	addr           string
	ready          string
	stdout, stderr testutil.LockedBuffer
	done           chan error
}

// startServeAsNobody runs serve as uid 65534 holding caps (setpriv's
// names, such as "bpf,perfmon") as ambient capabilities, and waits until
// /healthz answers.
func startServeAsNobody(t *testing.T, ctx context.Context, dir, bin, caps, addr string, args ...string) *nobodyServe {
	t.Helper()
	ready := filepath.Join(dir, "ready")
	os.Remove(ready)
	set := "-all," + strings.ReplaceAll("+"+caps, ",", ",+")
	full := []string{"--reuid=" + nobody, "--regid=" + nobody, "--clear-groups",
		"--inh-caps=" + set, "--ambient-caps=" + set, bin,
		"serve", "--listen", addr, "--ready-file", ready}
	s := &nobodyServe{addr: addr, ready: ready, done: make(chan error, 1)}
	s.cmd = exec.Command("setpriv", append(full, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
	})
	wctx, cancel := context.WithTimeout(ctx, tracerReady)
	defer cancel()
	err := testutil.Poll(wctx, 20*time.Millisecond, func() (bool, error) {
		select {
		case err := <-s.done:
			s.done <- err
			return false, fmt.Errorf("exited before it was ready: %v", err)
		default:
		}
		if _, err := os.Stat(ready); err != nil {
			return false, nil
		}
		code, _, err := httpGet(wctx, "http://"+addr+"/healthz")
		return err == nil && code == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("serve as uid %s with %s: %v\nstderr: %s", nobody, caps, err, s.stderr.Bytes())
	}
	t.Logf("serve as uid %s holding only %s: ready", nobody, caps)
	return s
}

// sigterm stops serve as a service manager does and wants exit status 0
// and the ready file gone: a stopped agent is not ready.
func (s *nobodyServe) sigterm(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Errorf("serve after SIGTERM: %v\nstderr: %s", err, s.stderr.Bytes())
		}
	case <-time.After(tracerStop):
		t.Fatalf("serve did not exit within %v of SIGTERM", tracerStop)
	}
	if _, err := os.Stat(s.ready); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file %s after SIGTERM: %v, want it removed", s.ready, err)
	}
	t.Logf("serve exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

func metricValue(t *testing.T, ctx context.Context, addr string, series *regexp.Regexp) string {
	t.Helper()
	code, body, err := httpGet(ctx, "http://"+addr+"/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	m := series.FindSubmatch(body)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// TestServeLeastPrivilege runs serve as an ordinary user holding only
// CAP_BPF and CAP_PERFMON, fails real sends in a pod's runc container, and
// checks /metrics counts them exactly under the container's id, with one
// warning that pod names need CAP_DAC_READ_SEARCH. Stopped with SIGTERM,
// it is restarted on the same address with that capability added, and
// then names the pod. Both runs read the same kernel counts afresh.
func TestServeLeastPrivilege(t *testing.T) {
	ctx := fleetContext(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	dir, bin := testutil.NobodyCopy(t, sendtraceBin)
	lab := newUDPLab(t, ctx)
	addr := freeAddr(t)
	pod := kubePod{uid: "7c1e2d3f-" + randomHex(t, 4) + "-4b5a-8c9d-" + randomHex(t, 12), namespace: "payments", name: "ledger-0", container: "ledger"}

	for _, run := range []struct {
		caps, label string
		warn        bool
	}{
		{"bpf,perfmon", "container/", true},
		{"bpf,perfmon,dac_read_search", pod.String(), false},
	} {
		s := startServeAsNobody(t, ctx, dir, bin, run.caps, addr, "--events=false", "--dst="+lab.Link.V4Net.String())
		c := startRunc(t, ctx, lab.Client, pod, lab.failingArgs(3)...)
		label := run.label
		if run.warn {
			label += c.id[:12]
		}
		// The container stays, parked after its sends, until /metrics
		// shows them: serve names a container by its cgroup, which runc
		// removes when the container exits, and a loaded machine can run
		// serve's reader after that.
		saw := c.failed(t, ctx)
		series := regexp.MustCompile(`(?m)^sendtrace_send_failures_total\{errno="EMSGSIZE",workload="` + regexp.QuoteMeta(label) + `"\} (\S+)$`)
		var got string
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = testutil.Poll(wctx, 100*time.Millisecond, func() (bool, error) {
			got = metricValue(t, ctx, addr, series)
			return got == fmt.Sprint(saw), nil
		})
		cancel()
		c.run(t, ctx)
		if saw != 3 || got != "3" {
			_, body, _ := httpGet(ctx, "http://"+addr+"/metrics")
			t.Errorf("with %s: the container's actor saw %d failed sends, /metrics says %q for workload %s; its send failures:\n%s",
				run.caps, saw, got, label, regexp.MustCompile(`(?m)^sendtrace_send_failures_total.*$`).FindAll(body, -1))
		} else {
			t.Logf("with %s: sendtrace_send_failures_total{errno=\"EMSGSIZE\",workload=%q} %s", run.caps, label, got)
		}
		s.sigterm(t)
		stderr := string(s.stderr.Bytes())
		warned := strings.Contains(stderr, "CAP_DAC_READ_SEARCH")
		if warned != run.warn {
			t.Errorf("with %s: warning about CAP_DAC_READ_SEARCH %v, want %v; stderr:\n%s", run.caps, warned, run.warn, stderr)
		}
		t.Logf("with %s, stderr:\n%s", run.caps, stderr)
	}
}

// TestServeLeastPrivilegeDocker: on a plain Docker host (a container in
// /docker/<id>, no pod), serve as an ordinary user with only CAP_BPF and
// CAP_PERFMON counts the container's failed sends under its id and warns
// about nothing: the runtime's unreadable state would name no pod there.
// It used to warn that Kubernetes pod names need CAP_DAC_READ_SEARCH.
func TestServeLeastPrivilegeDocker(t *testing.T) {
	ctx := fleetContext(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	dir, bin := testutil.NobodyCopy(t, sendtraceBin)
	lab := newUDPLab(t, ctx)
	addr := freeAddr(t)
	s := startServeAsNobody(t, ctx, dir, bin, "bpf,perfmon", addr, "--events=false", "--dst="+lab.Link.V4Net.String())
	c := startRuncAt(t, ctx, lab.Client, kubePod{}, func(id string) string { return "/docker/" + id }, lab.failingArgs(3)...)
	label := "docker/" + c.id[:12]
	saw := c.failed(t, ctx)
	series := regexp.MustCompile(`(?m)^sendtrace_send_failures_total\{errno="EMSGSIZE",workload="` + regexp.QuoteMeta(label) + `"\} (\S+)$`)
	var got string
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = testutil.Poll(wctx, 100*time.Millisecond, func() (bool, error) {
		got = metricValue(t, ctx, addr, series)
		return got == fmt.Sprint(saw), nil
	})
	cancel()
	c.run(t, ctx)
	if saw != 3 || got != "3" {
		t.Errorf("the container's actor saw %d failed sends, /metrics says %q for workload %s", saw, got, label)
	}
	s.sigterm(t)
	stderr := string(s.stderr.Bytes())
	if strings.Contains(stderr, "warning") {
		t.Errorf("serve warned where nothing is missing:\n%s", stderr)
	}
	t.Logf("stderr:\n%s", stderr)
}
