package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// runcContainer is one container run by Debian's runc from a bundle the
// test builds, as containerd's CRI plugin would for a pod: Kubernetes
// annotations in config.json and a kubepods cgroupsPath.
type runcContainer struct {
	id, bundle, ctl, cgroup string
	cmd                     *exec.Cmd
	stdout, stderr          bytes.Buffer
	done                    chan error
	sent                    []actorreport.Socket // the actor's sockets, once parked at phase "sent"
}

// startRunc runs args (the actor's, after its role) in a container
// joined to the lab namespace ns, and waits until the actor is parked at
// phase "start". After its sends the actor parks again, at phase "sent":
// a container that has exited has no cgroup left to be named by, so the
// test keeps it until sendtrace has read its events (see send and run).
func startRunc(t *testing.T, ctx context.Context, ns *netlab.NS, pod kubePod, args ...string) *runcContainer {
	t.Helper()
	return startRuncAt(t, ctx, ns, pod, func(id string) string { return "/kubepods/burstable/pod" + pod.uid + "/" + id }, args...)
}

// startRuncAt is startRunc with the container's cgroupsPath made from its
// id by cgroup (a plain Docker host's /docker/<id>, say).
func startRuncAt(t *testing.T, ctx context.Context, ns *netlab.NS, pod kubePod, cgroup func(id string) string, args ...string) *runcContainer {
	t.Helper()
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatal("runc is not installed: apt-get install runc (scripts/deps.sh)")
	}
	c := &runcContainer{id: randomHex(t, 64), bundle: t.TempDir(), ctl: t.TempDir(), done: make(chan error, 1)}
	rootfs := filepath.Join(c.bundle, "rootfs")
	for _, d := range []string{"proc", "ctl", "dev"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := os.ReadFile(actorBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "actor"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	c.cgroup = cgroup(c.id)
	spec := map[string]any{
		"ociVersion": "1.0.2",
		"root":       map[string]any{"path": "rootfs", "readonly": true},
		"process": map[string]any{
			"terminal": false,
			"user":     map[string]any{"uid": 0, "gid": 0},
			"args":     append([]string{"/actor", "client", "-ctl", "/ctl", "-pause-sent"}, args...),
			"env":      []string{"PATH=/"},
			"cwd":      "/",
		},
		"hostname": pod.name,
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc"},
			{"destination": "/ctl", "type": "bind", "source": c.ctl, "options": []string{"rbind", "rw"}},
		},
		"annotations": map[string]string{
			"io.kubernetes.cri.container-type":    "container",
			"io.kubernetes.cri.sandbox-name":      pod.name,
			"io.kubernetes.cri.sandbox-namespace": pod.namespace,
			"io.kubernetes.cri.sandbox-uid":       pod.uid,
			"io.kubernetes.cri.container-name":    pod.container,
		},
		"linux": map[string]any{
			"cgroupsPath": c.cgroup,
			"namespaces": []map[string]string{
				{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
				{"type": "network", "path": "/var/run/netns/" + ns.Name},
			},
		},
	}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command("runc", "run", "--bundle", c.bundle, c.id)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("runc run: %v", err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		_ = exec.Command("runc", "delete", "--force", c.id).Run()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
		}
		removeKubepods(t, c.cgroup)
	})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = testutil.Poll(wctx, 10*time.Millisecond, func() (bool, error) {
		_, err := actorreport.ReadPhase(c.ctl, "start")
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("container %s did not reach phase start: %v\nstderr: %s", c.id, err, c.stderr.String())
	}
	return c
}

// send releases the actor, waits until it has made its sends and is
// parked at phase "sent", and returns its sockets with their results.
// The container and its cgroup stay until run.
func (c *runcContainer) send(t *testing.T, ctx context.Context) []actorreport.Socket {
	t.Helper()
	if c.sent != nil {
		return c.sent
	}
	if err := actorreport.Release(c.ctl, "start"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var p *actorreport.Phase
	err := testutil.Poll(wctx, 10*time.Millisecond, func() (bool, error) {
		select {
		case err := <-c.done:
			c.done <- err // for run and the cleanup
			return false, fmt.Errorf("exited before phase sent: %v", err)
		default:
		}
		var err error
		p, err = actorreport.ReadPhase(c.ctl, "sent")
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("container %s: %v\nstdout: %s\nstderr: %s", c.id[:12], err, c.stdout.String(), c.stderr.String())
	}
	if len(p.Sockets) != 1 {
		t.Fatalf("actor in container at phase sent: %+v", p.Sockets)
	}
	c.sent = p.Sockets
	return c.sent
}

// failed is how many of the actor's sends failed (send first).
func (c *runcContainer) failed(t *testing.T, ctx context.Context) int {
	return len(c.send(t, ctx)[0].Failed())
}

// run lets the actor finish (after its sends, see send), waits for the
// container to exit and returns the actor's report.
func (c *runcContainer) run(t *testing.T, ctx context.Context) *actorreport.Report {
	t.Helper()
	c.send(t, ctx)
	if err := actorreport.Release(c.ctl, "sent"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		c.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("runc run: %v\nstderr: %s", err, c.stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("container still running: %v", ctx.Err())
	}
	var r actorreport.Report
	if err := json.Unmarshal(c.stdout.Bytes(), &r); err != nil {
		t.Fatalf("actor report: %v\nstdout: %s\nstderr: %s", err, c.stdout.String(), c.stderr.String())
	}
	if r.Error != "" || len(r.Sockets) != 1 {
		t.Fatalf("actor in container: %s %+v", r.Error, r.Sockets)
	}
	return &r
}

// removeKubepods removes the cgroup directories runc made for the pod in
// every hierarchy (runc delete removes only the container's own).
func removeKubepods(t *testing.T, cgroup string) {
	mounts, _ := filepath.Glob("/sys/fs/cgroup/*")
	mounts = append(mounts, "/sys/fs/cgroup")
	for _, m := range mounts {
		for p := cgroup; p != "/" && p != "."; p = filepath.Dir(p) {
			err := os.Remove(filepath.Join(m, p))
			if err != nil && !os.IsNotExist(err) {
				break
			}
		}
	}
}

// TestRuncPodNames runs the actor in a real runc container whose bundle
// carries a pod's annotations, makes it fail real sends, and checks each
// failed send names the pod, its namespace and the container.
func TestRuncPodNames(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	pod := kubePod{uid: "1f9d5c7e-" + randomHex(t, 4) + "-4a6b-9c2d-" + randomHex(t, 12), namespace: "shop", name: "cart-7d9f8b6c5-x2kqz", container: "cart"}
	c := startRunc(t, ctx, lab.Client, pod, lab.failingArgs(3)...)
	tr := testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, "-o", "json", "--dst="+lab.Link.V4Net.String())
	recording := filepath.Join(t.TempDir(), "pod.jsonl.zst")
	rec := testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, "record", "-o", recording, "--dst="+lab.Link.V4Net.String())
	c.send(t, ctx)
	stdout, stderr := tr.Stop(t, tracerStop)
	rec.Stop(t, tracerStop)
	r := c.run(t, ctx)
	defer checkRecordedWorkload(t, recording, c.id, pod.String(), 3)
	t.Logf("sendtrace stderr:\n%s", stderr)
	saw := r.Sockets[0].Failed()
	if len(saw) != 3 {
		t.Fatalf("lab: the actor in the container saw %d failed sends, want 3", len(saw))
	}
	id := inode(t, filepath.Join(cgroupV2(t), filepath.Dir(c.cgroup)))
	var got []event
	for _, e := range parseEvents(t, stdout) {
		if e.Kind == "send_error" && e.WorkloadInfo != nil && e.WorkloadInfo.ID == c.id {
			got = append(got, e)
		}
	}
	if len(got) != len(saw) {
		t.Fatalf("%d send_error events from container %s, the actor saw %d\n%s", len(got), c.id[:12], len(saw), stdout)
	}
	for _, e := range got {
		w := e.WorkloadInfo
		if e.Workload != pod.String() || w.Kind != "k8s" || w.Pod != pod.name || w.Namespace != pod.namespace || w.Container != pod.container {
			t.Errorf("want workload %s: %s", pod, e.raw)
		}
		if e.Cgroup == id || e.ErrnoName != "EMSGSIZE" || !strings.HasPrefix(e.Comm, "actor") {
			t.Errorf("want the container's own cgroup (not the pod's %d), EMSGSIZE, comm actor: %s", id, e.raw)
		}
	}
	t.Logf("failed send inside runc container: %s", got[0].raw)
}

// checkRecordedWorkload reads a recording back and wants n send errors of
// container id, each still naming its workload.
func checkRecordedWorkload(t *testing.T, path, id, want string, n int) {
	t.Helper()
	rd, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got := 0
	var e events.Event
	for {
		ok, err := rd.Next(&e)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if e.Kind == events.KindSendError && e.Workload != nil && e.Workload.ID == id {
			got++
			if e.Workload.String() != want {
				t.Errorf("recorded workload %q, want %q", e.Workload, want)
			}
		}
	}
	if got != n {
		t.Errorf("recording holds %d send errors of container %s, want %d", got, id[:12], n)
	} else {
		t.Logf("the recording keeps %d send errors of %s", got, want)
	}
}
