package netlab_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

var actorBin string

func TestMain(m *testing.M) {
	testutil.RunMain(m, func(dir string) (err error) {
		actorBin, err = netlab.BuildActor(dir)
		return err
	})
}

const port = 9000

func startServer(t *testing.T, ctx context.Context, ns *netlab.NS, mode string, addr string, extra ...string) *netlab.Actor {
	t.Helper()
	srv := ns.StartActor(t, actorBin, append([]string{"server", "-mode", mode, "-listen", addr}, extra...)...)
	if _, err := srv.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	return srv
}

// runClient starts a client, checks its start phase, releases it and
// returns its report. hook, when set, runs at phase "connected" (the
// client must be given -pause-connected).
func runClient(t *testing.T, ctx context.Context, ns *netlab.NS, hook func(*actorreport.Phase), args ...string) *actorreport.Report {
	t.Helper()
	cl := ns.StartActor(t, actorBin, append([]string{"client"}, args...)...)
	p, err := cl.WaitPhase(ctx, "start")
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != cl.PID() {
		t.Fatalf("actor says pid %d, process is %d: ip netns exec did not exec in place", p.PID, cl.PID())
	}
	if err := cl.Release("start"); err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		p, err := cl.WaitPhase(ctx, "connected")
		if err != nil {
			t.Fatal(err)
		}
		hook(p)
		if err := cl.Release("connected"); err != nil {
			t.Fatal(err)
		}
	}
	r, err := cl.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Error != "" {
		t.Fatalf("client: %s (report %+v)", r.Error, r)
	}
	if r.PID != cl.PID() || len(r.Sockets) != 1 {
		t.Fatalf("client report: pid %d (want %d), %d sockets", r.PID, cl.PID(), len(r.Sockets))
	}
	t.Logf("client socket: %+v", r.Sockets[0])
	return r
}

func wantErrnos(t *testing.T, s actorreport.Socket, want ...unix.Errno) {
	t.Helper()
	failed := s.Failed()
	if len(failed) != len(want) {
		t.Fatalf("failed sends: %+v, want errnos %v", failed, want)
	}
	for i, w := range want {
		if failed[i].Errno != int(w) || failed[i].ErrnoName != unix.ErrnoName(w) || failed[i].N != -1 {
			t.Errorf("failed send %d: %+v, want %s (%d)", i, failed[i], unix.ErrnoName(w), int(w))
		}
	}
}

func TestLabLifecycle(t *testing.T) {
	testutil.RequireRoot(t)
	var names []string
	t.Run("pair", func(t *testing.T) {
		p := netlab.NewPair(t, netlab.LinkOpts{MTU: 1400})
		names = []string{p.Client.Name, p.Server.Name}
		for _, n := range names {
			if _, err := os.Stat(filepath.Join("/run/netns", n)); err != nil {
				t.Fatalf("namespace %s: %v", n, err)
			}
		}
		out, err := p.Client.IP("-o", "addr", "show", "dev", p.Link.A.Name)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("client link: %s", out)
		for _, want := range []string{p.Link.A.V4.String() + "/24", p.Link.A.V6.String() + "/64", "mtu 1400"} {
			out, _ := p.Client.IP("addr", "show", "dev", p.Link.A.Name)
			if !strings.Contains(out, want) {
				t.Errorf("client link lacks %q:\n%s", want, out)
			}
		}
		if !p.Link.V4Net.Contains(p.Link.A.V4) || !netlabV4.Contains(p.Link.A.V4) || !netlabV6.Contains(p.Link.B.V6) {
			t.Errorf("addresses outside the lab ranges: %+v", p.Link)
		}
	})
	for _, n := range names {
		if _, err := os.Stat(filepath.Join("/run/netns", n)); err == nil {
			t.Errorf("namespace %s survived its test", n)
		}
	}
}

func TestSysctlAndSNMP(t *testing.T) {
	testutil.RequireRoot(t)
	l := netlab.New(t)
	ns := l.NS("c")
	host, err := os.ReadFile("/proc/sys/net/ipv4/tcp_retries2")
	if err != nil {
		t.Fatal(err)
	}
	want := "3"
	if string(host) == "3\n" {
		want = "4"
	}
	ns.MustSetSysctl("net.ipv4.tcp_retries2", want)
	if got, err := ns.Sysctl("net.ipv4.tcp_retries2"); err != nil || got != want {
		t.Fatalf("tcp_retries2 in namespace = %q, %v; want %s", got, err, want)
	}
	if after, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_retries2"); string(after) != string(host) {
		t.Fatalf("host tcp_retries2 changed from %q to %q", host, after)
	}
	c := ns.MustSNMP()
	for _, k := range []string{"TcpRetransSegs", "TcpOutSegs", "TcpExtTCPTimeouts", "UdpOutDatagrams", "Ip6OutRequests", "IpExtInOctets"} {
		if _, ok := c[k]; !ok {
			t.Errorf("counter %s missing", k)
		}
	}
	// A new namespace has sent nothing: its counters are its own.
	if c["TcpOutSegs"] != 0 {
		t.Errorf("fresh namespace TcpOutSegs = %d", c["TcpOutSegs"])
	}
}

func TestReset(t *testing.T) {
	testutil.RequireRoot(t)
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			ctx := testutil.Context(t, 60*time.Second)
			p := netlab.NewPair(t, netlab.LinkOpts{})
			dst := p.ServerAddr(v6, port)
			srv := startServer(t, ctx, p.Server, "reset", dst.String())
			r := runClient(t, ctx, p.Client, nil, "-to", dst.String(), "-await-error-before", "1", "-count", "2", "-size", "1000")
			s := r.Sockets[0]
			wantErrnos(t, s, unix.ECONNRESET, unix.EPIPE)
			if s.Remote != dst.String() || s.Cookie == 0 || s.AwaitedError&unix.POLLERR == 0 {
				t.Errorf("socket %+v: want remote %v, a cookie, POLLERR before the first send", s, dst)
			}
			if s.Sends[0].Size != 1000 {
				t.Errorf("send size %d", s.Sends[0].Size)
			}
			sr, err := srv.Stop(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(sr.Sockets) != 2 || sr.Sockets[1].Remote != s.Local {
				t.Errorf("server saw %+v, want one connection from %s", sr.Sockets, s.Local)
			}
		})
	}
}

// blackHole runs the client against a server that stops answering once the
// connection is up. rule is the nftables verdict for the client's packets.
func blackHole(t *testing.T, verdict string) (*actorreport.Report, int64) {
	ctx := testutil.Context(t, 90*time.Second)
	p := netlab.NewPair(t, netlab.LinkOpts{})
	dst := p.ServerAddr(false, port)
	startServer(t, ctx, p.Server, "discard", dst.String())
	p.Client.MustSetSysctl("net.ipv4.tcp_retries2", "3")
	var before netlab.Counters
	r := runClient(t, ctx, p.Client, func(*actorreport.Phase) {
		p.Server.MustNft(fmt.Sprintf(`table inet lab {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr %s tcp dport %d %s
	}
}`, p.ClientAddr(false), port, verdict))
		before = p.Client.MustSNMP()
	}, "-to", dst.String(), "-pause-connected", "-until-error", "-count", "0", "-interval", "100ms", "-size", "100")
	after := p.Client.MustSNMP()
	return r, netlab.Delta(before, after, "TcpRetransSegs")
}

func TestBlackHole(t *testing.T) {
	testutil.RequireRoot(t)
	r, retrans := blackHole(t, "drop")
	wantErrnos(t, r.Sockets[0], unix.ETIMEDOUT)
	if retrans < 3 {
		t.Errorf("TcpRetransSegs delta %d, want at least tcp_retries2 (3)", retrans)
	}
	t.Logf("%d sends, %d retransmitted segments", len(r.Sockets[0].Sends), retrans)
}

func TestHostUnreachableTCP(t *testing.T) {
	testutil.RequireRoot(t)
	r, retrans := blackHole(t, "reject with icmp type host-unreachable")
	wantErrnos(t, r.Sockets[0], unix.EHOSTUNREACH)
	t.Logf("%d sends, %d retransmitted segments", len(r.Sockets[0].Sends), retrans)
}

func TestHostUnreachableUDP(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 60*time.Second)
	p := netlab.NewPair(t, netlab.LinkOpts{})
	p.Server.MustNft(fmt.Sprintf(`table inet lab {
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport %d reject with icmpx type host-unreachable
	}
}`, port))
	for _, v6 := range []bool{false, true} {
		dst := p.ServerAddr(v6, port)
		// Host unreachable is not a hard error for UDP (icmp_err_convert
		// marks it non-fatal), so only a socket with IP_RECVERR gets it.
		r := runClient(t, ctx, p.Client, nil, "-proto", "udp", "-to", dst.String(), "-recverr", "-count", "2", "-await-error-before", "2")
		s := r.Sockets[0]
		if s.Sends[0].Errno != 0 {
			t.Errorf("first datagram: %+v", s.Sends[0])
		}
		wantErrnos(t, s, unix.EHOSTUNREACH)
	}
}

func TestSendBufferFull(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 60*time.Second)
	p := netlab.NewPair(t, netlab.LinkOpts{})
	dst := p.ServerAddr(false, port)
	startServer(t, ctx, p.Server, "sink", dst.String(), "-rcvbuf", "65536")
	r := runClient(t, ctx, p.Client, nil, "-to", dst.String(), "-nonblock", "-sndbuf", "65536",
		"-until-error", "-count", "0", "-size", "16384")
	wantErrnos(t, r.Sockets[0], unix.EAGAIN)
	t.Logf("%d sends before EAGAIN", len(r.Sockets[0].Sends)-1)
}

func TestUDPMessageTooBig(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 60*time.Second)
	p := netlab.NewPair(t, netlab.LinkOpts{MTU: 1400})
	dst := p.ServerAddr(false, port)
	startServer(t, ctx, p.Server, "udp", dst.String())
	r := runClient(t, ctx, p.Client, nil, "-proto", "udp", "-to", dst.String(), "-pmtu-do", "-size", "1400")
	wantErrnos(t, r.Sockets[0], unix.EMSGSIZE)
}

func TestSeccompECOMM(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 60*time.Second)
	p := netlab.NewPair(t, netlab.LinkOpts{})
	dst := p.ServerAddr(false, port)
	startServer(t, ctx, p.Server, "discard", dst.String())
	r := runClient(t, ctx, p.Client, nil, "-to", dst.String(), "-seccomp-ecomm", "-count", "3", "-size", "512")
	wantErrnos(t, r.Sockets[0], unix.ECOMM, unix.ECOMM, unix.ECOMM)
	if unix.ECOMM != 70 {
		t.Logf("ECOMM is %d on this architecture", int(unix.ECOMM))
	}
}

// TestRoutedPMTU checks forwarding in the routed topology and a path MTU
// below the client's link MTU: the router's ICMP "fragmentation needed"
// makes the next send on a connected DF socket fail with EMSGSIZE.
func TestRoutedPMTU(t *testing.T) {
	testutil.RequireRoot(t)
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			ctx := testutil.Context(t, 60*time.Second)
			r := netlab.NewRouted(t, netlab.LinkOpts{}, netlab.LinkOpts{MTU: 1280})
			dst := r.ServerAddr(v6, port)
			srv := startServer(t, ctx, r.Server, "udp", dst.String(), "-exit-after-bytes", "300")
			rep := runClient(t, ctx, r.Client, nil, "-proto", "udp", "-to", dst.String(), "-pmtu-do",
				"-size", "1300", "-count", "2", "-await-error-before", "2")
			s := rep.Sockets[0]
			if s.Sends[0].Errno != 0 {
				t.Fatalf("first datagram should leave the client: %+v", s.Sends[0])
			}
			wantErrnos(t, s, unix.EMSGSIZE)
			// Forwarding works for datagrams that fit.
			rep = runClient(t, ctx, r.Client, nil, "-proto", "udp", "-to", dst.String(), "-size", "100", "-count", "3")
			wantErrnos(t, rep.Sockets[0])
			sr, err := srv.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if sr.Sockets[0].BytesRead != 300 {
				t.Errorf("server read %d bytes through the router, want 300", sr.Sockets[0].BytesRead)
			}
		})
	}
}

var (
	netlabV4 = netip.MustParsePrefix("198.18.0.0/15")
	netlabV6 = netip.MustParsePrefix("fd00::/8")
)

// TestRoutedConntrackIdle is the stateful-middlebox shape: a router whose
// firewall forgets an idle connection (a one-second established timeout,
// no mid-stream pickup) and then drops its segments as invalid. The client
// sees a black hole in the middle of the path.
func TestRoutedConntrackIdle(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 90*time.Second)
	r := netlab.NewRouted(t, netlab.LinkOpts{}, netlab.LinkOpts{})
	dst := r.ServerAddr(false, port)
	startServer(t, ctx, r.Server, "discard", dst.String())
	r.Client.MustSetSysctl("net.ipv4.tcp_retries2", "3")
	// The ct expression loads conntrack, whose per-namespace sysctls
	// exist only from then on.
	r.Router.MustNft(`table inet mbox {
	chain forwarded {
		type filter hook forward priority 0; policy accept;
		ct state invalid counter drop
	}
}`)
	// An entry's timeout is re-armed from these on each packet, so they
	// must be in force before the handshake.
	r.Router.MustSetSysctl("net.netfilter.nf_conntrack_tcp_loose", "0")
	r.Router.MustSetSysctl("net.netfilter.nf_conntrack_tcp_timeout_established", "1")
	rep := runClient(t, ctx, r.Client, func(*actorreport.Phase) {
		// Let the entry expire; this waits for the middlebox, it asserts
		// nothing about speed.
		time.Sleep(2500 * time.Millisecond)
	}, "-to", dst.String(), "-pause-connected", "-until-error", "-count", "0", "-interval", "100ms", "-size", "100", "-timeout", "30s")
	wantErrnos(t, rep.Sockets[0], unix.ETIMEDOUT)
	out, err := r.Router.Run("nft", "list", "table", "inet", "mbox")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "counter packets") || strings.Contains(out, "counter packets 0 ") {
		t.Errorf("the middlebox dropped nothing as invalid:\n%s", out)
	}
}
