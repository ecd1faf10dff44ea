package fleet_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// udpLab is a pair of namespaces whose link MTU makes every UDP send of
// 1400 bytes with DF fail with EMSGSIZE: a real failed send, as many as
// the test asks for.
type udpLab struct {
	*netlab.Pair
	dst netip.AddrPort
}

func newUDPLab(t *testing.T, ctx context.Context) *udpLab {
	lab := netlab.NewPair(t, netlab.LinkOpts{MTU: 1400})
	dst := lab.ServerAddr(false, udpPort)
	srv := lab.Server.StartActor(t, actorBin, "server", "-mode", "udp", "-listen", dst.String())
	if _, err := srv.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	return &udpLab{Pair: lab, dst: dst}
}

// failingArgs are the actor's arguments for n failed sends.
func (l *udpLab) failingArgs(n int) []string {
	return []string{"-proto", "udp", "-to", l.dst.String(), "-pmtu-do", "-size", "1400", "-count", strconv.Itoa(n)}
}

// client starts an actor that will fail n sends, parked before its first.
func (l *udpLab) client(t *testing.T, ctx context.Context, n int) *netlab.Actor {
	t.Helper()
	cl := l.Client.StartActor(t, actorBin, append([]string{"client"}, l.failingArgs(n)...)...)
	if _, err := cl.WaitPhase(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	return cl
}

// failedSends waits for an actor and returns how many sends the kernel
// failed, by errno name.
func failedSends(t *testing.T, ctx context.Context, a *netlab.Actor) []actorreport.Send {
	t.Helper()
	r, err := a.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Error != "" || len(r.Sockets) != 1 {
		t.Fatalf("%v: %s %+v", a, r.Error, r.Sockets)
	}
	return r.Sockets[0].Failed()
}

// moveInto puts a running process into a cgroup v2 directory.
func moveInto(t *testing.T, dir string, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatalf("move pid %d into %s: %v", pid, dir, err)
	}
}

// TestWorkloadCgroupLayouts puts real processes into cgroups laid out as
// systemd, Docker (systemd and cgroupfs drivers) and Podman lay them out,
// makes each fail real sends, and checks every failed send names the
// workload its cgroup says.
func TestWorkloadCgroupLayouts(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	unit := "sendtrace-fleet-" + randomHex(t, 8) + ".service"
	docker, dockerFS, podman := randomHex(t, 64), randomHex(t, 64), randomHex(t, 64)
	layouts := []struct {
		path, want, kind string
	}{
		{"system.slice/" + unit, "systemd/" + unit, "systemd"},
		{"system.slice/docker-" + docker + ".scope", "docker/" + docker[:12], "docker"},
		{"docker/" + dockerFS, "docker/" + dockerFS[:12], "docker"},
		{"machine.slice/libpod-" + podman + ".scope", "podman/" + podman[:12], "podman"},
	}
	actors := make([]*netlab.Actor, len(layouts))
	ids := make([]uint64, len(layouts))
	for i, l := range layouts {
		var dir string
		dir, ids[i] = makeCgroup(t, l.path)
		actors[i] = lab.client(t, ctx, 2)
		moveInto(t, dir, actors[i].PID())
	}
	tr := testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, "-o", "json", "--dst="+lab.Link.V4Net.String())
	for _, a := range actors {
		if err := a.Release("start"); err != nil {
			t.Fatal(err)
		}
	}
	saw := make([]int, len(actors))
	for i, a := range actors {
		saw[i] = len(failedSends(t, ctx, a))
	}
	stdout, stderr := tr.Stop(t, tracerStop)
	t.Logf("sendtrace stderr:\n%s", stderr)
	evs := parseEvents(t, stdout)
	for i, l := range layouts {
		got := sendErrors(evs, ids[i])
		if len(got) != saw[i] || saw[i] != 2 {
			t.Errorf("%s: %d send_error events, the actor saw %d failed sends (want 2)", l.path, len(got), saw[i])
		}
		for _, e := range got {
			if e.Workload != l.want || e.WorkloadInfo == nil || e.WorkloadInfo.Kind != l.kind {
				t.Errorf("%s: workload %q, want %q of kind %s: %s", l.path, e.Workload, l.want, l.kind, e.raw)
			}
		}
		if len(got) > 0 {
			t.Logf("%s: %s", l.path, got[0].raw)
		}
	}
	if t.Failed() {
		t.Logf("events:\n%s", stdout)
	}
}

// kubePod is a pod's identity as Kubernetes would give it to the runtime.
type kubePod struct {
	uid, namespace, name, container string
}

func (p kubePod) String() string {
	return fmt.Sprintf("k8s/%s/%s/%s", p.namespace, p.name, p.container)
}
