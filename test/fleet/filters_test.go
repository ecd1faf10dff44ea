package fleet_test

import (
	"fmt"
	"testing"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestWorkloadFilters selects a Docker container by id prefix, a systemd
// unit by name and a five-container pod by NAMESPACE/NAME (more cgroups
// than --cgroup once held), beside a container that is not selected; each
// fails real sends, and only the selected ones may be reported, each send
// exactly once.
func TestWorkloadFilters(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	chosen, other := randomHex(t, 64), randomHex(t, 64)
	unit := "sendtrace-filter-" + randomHex(t, 8) + ".service"
	chosenDir, _ := makeCgroup(t, "system.slice/docker-"+chosen+".scope")
	otherDir, _ := makeCgroup(t, "system.slice/docker-"+other+".scope")
	unitDir, _ := makeCgroup(t, "system.slice/"+unit)

	type source struct {
		name  string
		actor *netlab.Actor
		runc  *runcContainer
		want  bool
	}
	var srcs []*source
	for _, c := range []struct {
		dir, name string
		want      bool
	}{{chosenDir, "docker/" + chosen[:12], true}, {otherDir, "docker/" + other[:12], false}, {unitDir, "systemd/" + unit, true}} {
		a := lab.client(t, ctx, 2)
		moveInto(t, c.dir, a.PID())
		srcs = append(srcs, &source{name: c.name, actor: a, want: c.want})
	}
	pod := kubePod{uid: "5e6f7a8b-" + randomHex(t, 4) + "-4c3d-9e8f-" + randomHex(t, 12), namespace: "shop", name: "checkout-0"}
	for i := range 5 {
		p := pod
		p.container = fmt.Sprintf("step%d", i)
		srcs = append(srcs, &source{name: p.String(), runc: startRunc(t, ctx, lab.Client, p, lab.failingArgs(2)...), want: true})
	}

	tr := testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, "-o", "json", "--dst="+lab.Link.V4Net.String(),
		"--container", chosen[:12], "--unit", unit, "--pod", pod.namespace+"/"+pod.name)
	saw := map[string]int{}
	for _, s := range srcs {
		if s.actor != nil {
			if err := s.actor.Release("start"); err != nil {
				t.Fatal(err)
			}
			saw[s.name] = len(failedSends(t, ctx, s.actor))
		} else {
			saw[s.name] = s.runc.failed(t, ctx)
		}
	}
	// The containers exit only once the tracer has read every event
	// (see startRunc).
	stdout, stderr := tr.Stop(t, tracerStop)
	for _, s := range srcs {
		if s.runc != nil {
			s.runc.run(t, ctx)
		}
	}
	t.Logf("sendtrace stderr:\n%s", stderr)
	got := map[string]int{}
	for _, e := range parseEvents(t, stdout) {
		if e.Kind == "send_error" {
			got[e.Workload]++
		}
	}
	for _, s := range srcs {
		want := 0
		if s.want {
			want = saw[s.name]
		}
		if saw[s.name] != 2 || got[s.name] != want {
			t.Errorf("%s: %d send_error events, want %d (the process saw %d failed sends)", s.name, got[s.name], want, saw[s.name])
		}
		delete(got, s.name)
	}
	for w, n := range got {
		t.Errorf("%d send_error events from %q, which no filter selects", n, w)
	}
}
