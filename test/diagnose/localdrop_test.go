package diagnose_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
)

// stalledClient runs a client that connects and sends until the kernel
// gives up (tcp_retries2=3 in the client's namespace); block applies the
// fault after the connection has carried data for healthy (or, when that
// is 0, before it sends anything). It returns the client's report,
// sendtrace's events and diagnoses, and what the client saw followed by
// the rule of its socket's diagnosis.
func stalledClient(t *testing.T, client, server *netlab.NS, dst string, size int, healthy time.Duration, block func()) (*actorreport.Report, []events.Event, []diagnose.Diagnosis, []string) {
	t.Helper()
	ctx := scenario(t)
	client.MustSetSysctl("net.ipv4.tcp_retries2", "3")
	srv := server.StartActor(t, actorBin, "server", "-mode", "discard", "-listen", dst)
	if _, err := srv.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	cl := client.StartActor(t, actorBin, "client", "-to", dst, "-pause-connected",
		"-until-error", "-count", "0", "-interval", "100ms", "-size", strconv.Itoa(size))
	if _, err := cl.WaitPhase(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	tr := startTracer(t, ctx, "--pid="+strconv.Itoa(cl.PID()))
	if err := cl.Release("start"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.WaitPhase(ctx, "connected"); err != nil {
		t.Fatal(err)
	}
	if healthy == 0 {
		block()
	}
	if err := cl.Release("connected"); err != nil {
		t.Fatal(err)
	}
	if healthy > 0 {
		time.Sleep(healthy)
		block()
	}
	r, err := cl.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs, ds := tr.stop(t)
	var got []string
	for _, f := range r.Sockets[0].Failed() {
		got = append(got, f.ErrnoName)
	}
	for _, d := range ds {
		if d.Cookie == r.Sockets[0].Cookie {
			got = append(got, d.Rule)
		}
	}
	return r, evs, ds, got
}

func drops(evs []events.Event, cookie uint64) []events.Event {
	var out []events.Event
	for _, e := range evs {
		if e.Kind == events.KindDrop && e.Cookie == cookie {
			out = append(out, e)
		}
	}
	return out
}

// The client's own firewall drops its data after the handshake. TCP never
// retransmits (the data never counted as sent); the drops are the only
// evidence of where the data died, and the failure is this host's, not
// the path's.
func TestLocalDropFirewall(t *testing.T) {
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	r, evs, _, got := stalledClient(t, lab.Client, lab.Server, dst.String(), 100, 0, func() {
		lab.Client.MustNft(fmt.Sprintf(`table inet lab {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr %s tcp dport %d drop
	}
}`, dst.Addr(), port))
	})
	if fmt.Sprint(got) != "[ETIMEDOUT local-drop]" {
		t.Fatalf("the client saw, then sendtrace diagnosed: %v; want [ETIMEDOUT local-drop]", got)
	}
	ds := drops(evs, r.Sockets[0].Cookie)
	if len(ds) == 0 {
		t.Fatal("no drop events for the client's socket")
	}
	for _, e := range ds {
		if e.PID != uint32(r.PID) || !e.OwnerKnown || e.DropReason != "NETFILTER_DROP" || e.DropDir != events.DropOut {
			t.Errorf("drop %+v: want the client's pid %d, NETFILTER_DROP on the way out", e, r.PID)
		}
	}
	t.Logf("%d NETFILTER_DROP drops of the client's segments, in %s", len(ds), ds[0].DropLocation)
}

// A path black hole under a bulk transfer: the router starts to drop the
// client's segments after full-size segments have crossed the path for a
// while (so it is no path MTU black hole). Nothing is dropped on the
// client's host, so the diagnosis is black-hole, never local-drop.
func TestBlackHoleBulkIsNotLocalDrop(t *testing.T) {
	lab := netlab.NewRouted(t, netlab.LinkOpts{}, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	r, evs, _, got := stalledClient(t, lab.Client, lab.Server, dst.String(), 65536, 1500*time.Millisecond, func() {
		lab.Router.MustNft(fmt.Sprintf(`table inet lab {
	chain forward_filter {
		type filter hook forward priority 0; policy accept;
		ip saddr %s ip daddr %s drop
	}
}`, lab.ClientAddr(false), dst.Addr()))
	})
	if fmt.Sprint(got) != "[ETIMEDOUT black-hole]" {
		t.Fatalf("the client saw, then sendtrace diagnosed: %v; want [ETIMEDOUT black-hole]", got)
	}
	if ds := drops(evs, r.Sockets[0].Cookie); len(ds) != 0 {
		t.Errorf("%d drop events on the client's host for a drop on the router: %+v", len(ds), ds[0])
	}
}
