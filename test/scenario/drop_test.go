package scenario_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/netlab"
)

// pinNeighbour makes the client's neighbour entry for the server
// permanent and turns IPv6 off on the client's link, so that nothing but
// the test's own packets (no ARP, no ND or MLD) goes through its qdisc.
func pinNeighbour(t *testing.T, lab *netlab.Pair) {
	t.Helper()
	out, err := lab.Server.IP("-j", "link", "show", "dev", lab.Link.B.Name)
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("link of %s: %v: %s", lab.Link.B.Name, err, out)
	}
	if _, err := lab.Client.IP("neigh", "replace", lab.Link.B.V4.String(), "lladdr", links[0].Address,
		"dev", lab.Link.A.Name, "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	lab.Client.MustSetSysctl("net.ipv6.conf."+lab.Link.A.Name+".disable_ipv6", "1")
}

var qdiscDropped = regexp.MustCompile(`dropped (\d+)`)

// TestDropQdisc: a burst of datagrams into a shaper with a tiny queue on
// the client's own link. Each datagram the qdisc drops is a drop event for
// the client, named by the kernel, counted exactly as the qdisc counts
// it, and seen by the client, which asked for IP_RECVERR, as ENOBUFS.
func TestDropQdisc(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	pinNeighbour(t, lab)
	dst := lab.ServerAddr(false, port)
	startServer(t, ctx, lab.Server, "udp", dst)
	dev := lab.Link.A.Name
	if _, err := lab.Client.Run("tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", "1mbit", "burst", "1600", "limit", "3000"); err != nil {
		t.Fatal(err)
	}
	cl := startClient(t, ctx, lab.Client, "-proto", "udp", "-to", dst.String(), "-recverr", "-count", "100", "-size", "1000")
	path := filepath.Join(t.TempDir(), "qdisc.jsonl")
	st := startRecording(t, ctx, path, pidArg(cl))
	release(t, cl, "start")
	r := finish(t, ctx, cl)
	rec := stopRecording(t, st, path)
	tcOut, err := lab.Client.Run("tc", "-s", "qdisc", "show", "dev", dev)
	if err != nil {
		t.Fatal(err)
	}
	m := qdiscDropped.FindStringSubmatch(tcOut)
	if m == nil {
		t.Fatalf("no drop count in tc -s qdisc:\n%s", tcOut)
	}
	tcDropped, _ := strconv.Atoi(m[1])
	t.Logf("tc -s qdisc show dev %s:\n%s", dev, tcOut)

	s := r.Sockets[0]
	var drops []events.Event
	for _, e := range rec.Events {
		if e.Kind == events.KindDrop {
			drops = append(drops, e)
		}
	}
	enobufs := 0
	for _, f := range s.Failed() {
		if f.ErrnoName == "ENOBUFS" {
			enobufs++
		}
	}
	t.Logf("qdisc dropped %d, drop events %d, the client's ENOBUFS %d of 100 sends", tcDropped, len(drops), enobufs)
	if tcDropped == 0 {
		t.Fatal("lab: the qdisc dropped nothing")
	}
	if len(drops) != tcDropped {
		t.Errorf("%d drop events, the qdisc dropped %d", len(drops), tcDropped)
	}
	if enobufs != tcDropped {
		t.Errorf("the client saw ENOBUFS %d times, the qdisc dropped %d", enobufs, tcDropped)
	}
	var counted uint64
	for _, row := range rec.Footer.Totals {
		if row.Kind == "drop" {
			counted += row.Count
			if row.PID != uint32(r.PID) || row.Dst != dst.String() || row.Detail != "QDISC_DROP" {
				t.Errorf("totals row %+v: want pid %d, dst %s, QDISC_DROP", row, r.PID, dst)
			}
		}
	}
	if counted != uint64(tcDropped) {
		t.Errorf("kernel totals count %d drops, the qdisc %d", counted, tcDropped)
	}
	for _, e := range drops {
		if e.PID != uint32(r.PID) || !e.OwnerKnown || e.Cookie != s.Cookie || e.Dst.String() != dst.String() {
			t.Errorf("drop %+v: want the client's socket (pid %d, cookie %d)", e, r.PID, s.Cookie)
		}
		// At the qdisc the datagram has its UDP, IP and Ethernet headers.
		if e.DropReason != "QDISC_DROP" || e.DropDir != events.DropOut || e.DropDev != dev || e.Segs != 1 || e.Bytes != 1000+8+20+14 {
			t.Errorf("drop %s dir %s dev %q segs %d bytes %d, want QDISC_DROP out of %s, one 1042-byte frame",
				e.DropReason, e.DropDir, e.DropDev, e.Segs, e.Bytes, dev)
		}
		if e.DropLocation == "" {
			t.Errorf("drop without the place that dropped it: %+v", e)
		}
	}
}

// TestDropNoRoute: the route to the peer disappears mid-connection. The
// client's segments die in its own IP layer; sendtrace names the kernel's
// reason and the client's errno.
func TestDropNoRoute(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	startServer(t, ctx, lab.Server, "discard", dst)
	lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", "3")
	cl := startClient(t, ctx, lab.Client, "-to", dst.String(), "-pause-connected", "-until-error", "-count", "0",
		"-interval", "100ms", "-size", "100")
	tr := StartTracer(t, ctx, pidArg(cl))
	release(t, cl, "start")
	if _, err := cl.WaitPhase(ctx, "connected"); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Client.IP("route", "del", lab.Link.V4Net.String(), "dev", lab.Link.A.Name); err != nil {
		t.Fatal(err)
	}
	release(t, cl, "connected")
	r := finish(t, ctx, cl)
	evs := tr.Stop(t)
	checkOnly(t, evs, r)
	s := r.Sockets[0]
	failed := s.Failed()
	if len(failed) != 1 {
		t.Fatalf("lab: the client saw %v, want one failure", errnoNamesOf(failed))
	}
	drops := OfKind(evs, "drop", s.Cookie)
	if len(drops) == 0 {
		t.Fatal("no drop events for the client's socket")
	}
	for _, e := range drops {
		checkOwner(t, e, r)
		if *e.DropReason != "IP_OUTNOROUTES" || *e.DropDir != "out" || e.Dst != s.Remote {
			t.Errorf("%s: want IP_OUTNOROUTES on the way out to %s", e, s.Remote)
		}
	}
	sends := checkSendErrors(t, evs, r, joinedLayer())
	t.Logf("%d drops (%s in %s), then the client got %s", len(drops), *drops[0].DropReason, *drops[0].DropLocation, failed[0].ErrnoName)
	if len(sends) == 1 && sends[0].Mono < drops[0].Mono {
		t.Errorf("the failure (%s) came before the first drop", sends[0])
	}
}

// TestNoDropsWhenHealthy: a transfer that loses nothing has no drop
// event, and the kernel counted none.
func TestNoDropsWhenHealthy(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	startServer(t, ctx, lab.Server, "discard", dst)
	cl := startClient(t, ctx, lab.Client, "-to", dst.String(), "-count", "400", "-size", "16384")
	path := filepath.Join(t.TempDir(), "healthy.jsonl")
	st := startRecording(t, ctx, path, pidArg(cl))
	release(t, cl, "start")
	r := finish(t, ctx, cl)
	rec := stopRecording(t, st, path)
	if n := len(r.Sockets[0].Failed()); n != 0 {
		t.Fatalf("lab: %d sends failed", n)
	}
	for _, e := range rec.Events {
		if e.Kind == events.KindDrop {
			t.Errorf("drop event on a healthy transfer: %+v", e)
		}
	}
	for _, row := range rec.Footer.Totals {
		if row.Kind == "drop" {
			t.Errorf("the kernel counted drops on a healthy transfer: %+v", row)
		}
	}
	t.Logf("%s", fmt.Sprint(len(rec.Events), " events, no drops"))
}
