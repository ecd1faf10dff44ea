// Package netlab builds throwaway network labs for real-fault tests:
// network namespaces joined by veth pairs, addressed from the benchmarking
// range 198.18.0.0/15 and the unique-local range fd00::/8, so no test
// traffic can leave the machine. Everything a lab creates is removed in
// the test's cleanup, also when the test fails.
//
// A lab is a set of namespaces (NS) and links between them (Link). Pair
// (client — server) and Routed (client — router — server) are the
// topologies the scenario tests use; other shapes are built from New,
// Lab.NS and Lab.Connect.
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil/timescale"
)

// Lab owns a set of namespaces and removes them when the test ends.
type Lab struct {
	t  testing.TB
	ID string // random suffix shared by every name the lab creates

	mu    sync.Mutex
	nss   []*NS
	links int
}

// NS is one network namespace of a lab.
type NS struct {
	Name string
	lab  *Lab
}

// Iface is one end of a link.
type Iface struct {
	NS   *NS
	Name string
	V4   netip.Addr // in a /24 of 198.18.0.0/15
	V6   netip.Addr // in a /64 of fd00::/8
}

// Link is a veth pair between two namespaces, on its own subnet.
type Link struct {
	A, B   Iface
	V4Net  netip.Prefix
	V6Net  netip.Prefix
	MTU    int // 0: the veth default (1500)
	Subnet int // index of the subnet within 198.18.0.0/15
}

// LinkOpts configure a link.
type LinkOpts struct {
	MTU int // 0: leave the default
}

// subnetSeq hands out subnets. It starts at a random place so that
// concurrent test binaries (go test ./... runs packages in parallel) rarely
// pick the same subnet; the namespaces keep them apart anyway, but
// distinct subnets keep a tracer's --dst filter meaningful.
var subnetSeq atomic.Int64

func init() {
	n, err := rand.Int(rand.Reader, big.NewInt(400))
	if err == nil {
		subnetSeq.Store(n.Int64())
	}
}

// 198.18.0.0/15 has 512 /24s; index 0 is skipped so that fd00:0::/64
// (which would print as fd00::/64) never appears.
func nextSubnet() int { return int(subnetSeq.Add(1)%511) + 1 }

func subnetV4(i, host int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, byte(18 + i/256), byte(i % 256), byte(host)})
}

func subnetV6(i, host int) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfd, 0x00
	a[2], a[3] = byte(i>>8), byte(i)
	a[15] = byte(host)
	return netip.AddrFrom16(a)
}

// New starts an empty lab. Its namespaces are deleted in t's cleanup.
func New(t testing.TB) *Lab {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("netlab needs iproute2: %v", err)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sweepOnce.Do(sweep)
	l := &Lab{t: t, ID: hex.EncodeToString(b)}
	t.Cleanup(l.cleanup)
	return l
}

// NS creates a namespace named "st<role>-<lab id>", with lo up. Use a
// one-letter role ("c", "s", "r") so names stay short and recognisable in
// `ip netns list` when a run is killed before its cleanup.
func (l *Lab) NS(role string) *NS {
	l.t.Helper()
	n := &NS{Name: "st" + role + "-" + l.ID, lab: l}
	if err := writeOwner(n.Name); err != nil {
		l.t.Fatal(err)
	}
	if out, err := run("ip", "netns", "add", n.Name); err != nil {
		removeOwner(n.Name)
		l.t.Fatalf("ip netns add %s: %v: %s", n.Name, err, out)
	}
	l.mu.Lock()
	l.nss = append(l.nss, n)
	l.mu.Unlock()
	// Links made later inherit "default": with DAD off, their link-local
	// addresses are usable at once, as the nodad global ones are.
	for _, k := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
		if err := n.SetSysctl(k, "0"); err != nil {
			l.t.Fatal(err)
		}
	}
	n.mustIP("link", "set", "lo", "up")
	return n
}

// Connect joins a and b with a veth pair on a fresh subnet: a gets .1 and
// ::1, b gets .2 and ::2. IPv6 addresses skip duplicate address detection
// so they are usable at once.
func (l *Lab) Connect(a, b *NS, o LinkOpts) *Link {
	l.t.Helper()
	l.mu.Lock()
	l.links++
	k := l.links
	l.mu.Unlock()
	i := nextSubnet()
	lk := &Link{
		Subnet: i,
		MTU:    o.MTU,
		V4Net:  netip.PrefixFrom(subnetV4(i, 0), 24),
		V6Net:  netip.PrefixFrom(subnetV6(i, 0), 64),
		A:      Iface{NS: a, Name: fmt.Sprintf("v%s%da", l.ID[:6], k), V4: subnetV4(i, 1), V6: subnetV6(i, 1)},
		B:      Iface{NS: b, Name: fmt.Sprintf("v%s%db", l.ID[:6], k), V4: subnetV4(i, 2), V6: subnetV6(i, 2)},
	}
	if out, err := run("ip", "link", "add", lk.A.Name, "netns", a.Name, "type", "veth",
		"peer", "name", lk.B.Name, "netns", b.Name); err != nil {
		l.t.Fatalf("veth %s-%s: %v: %s", a.Name, b.Name, err, out)
	}
	for _, f := range []Iface{lk.A, lk.B} {
		if o.MTU > 0 {
			f.NS.mustIP("link", "set", f.Name, "mtu", fmt.Sprint(o.MTU))
		}
		f.NS.mustIP("addr", "add", f.V4.String()+"/24", "dev", f.Name)
		f.NS.mustIP("-6", "addr", "add", f.V6.String()+"/64", "dev", f.Name, "nodad")
		f.NS.mustIP("link", "set", f.Name, "up")
	}
	for _, f := range []Iface{lk.A, lk.B} {
		if err := f.waitUp(timescale.Scale(10 * time.Second)); err != nil {
			l.t.Fatal(err)
		}
	}
	return lk
}

// waitUp waits until the interface is operationally up and has no
// tentative IPv6 address. Until linkwatch has seen the carrier (it may
// defer that by up to a second) the device drops what it is given, and
// IPv6 keeps even a nodad address tentative, so the first SYN or neighbour
// solicitation of a test would be lost and retransmitted a second later.
func (f Iface) waitUp(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		link, err := f.NS.IP("-o", "link", "show", "dev", f.Name)
		if err != nil {
			return err
		}
		tentative, err := f.NS.IP("-6", "addr", "show", "dev", f.Name, "tentative")
		if err != nil {
			return err
		}
		if strings.Contains(link, "state UP") && strings.TrimSpace(tentative) == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s in %s not up after %v:\n%s%s", f.Name, f.NS.Name, d, link, tentative)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Pair is the two-namespace topology: Client — Server on one link.
type Pair struct {
	*Lab
	Client, Server *NS
	Link           *Link
}

// NewPair builds a client and a server namespace joined by one veth pair.
func NewPair(t testing.TB, o LinkOpts) *Pair {
	t.Helper()
	l := New(t)
	p := &Pair{Lab: l, Client: l.NS("c"), Server: l.NS("s")}
	p.Link = l.Connect(p.Client, p.Server, o)
	return p
}

// ServerAddr is the server's address on the link, v6 or not, with port.
func (p *Pair) ServerAddr(v6 bool, port uint16) netip.AddrPort {
	return addrOf(p.Link.B, v6, port)
}

// ClientAddr is the client's address on the link.
func (p *Pair) ClientAddr(v6 bool) netip.Addr { return addrOf(p.Link.A, v6, 0).Addr() }

// Routed is client — router — server: two links, forwarding on in the
// router, default routes in the ends. It is where a path MTU smaller than
// the client's link (Right with MTU 1280) or a stateful middlebox
// (nftables with conntrack in Router) goes.
type Routed struct {
	*Lab
	Client, Router, Server *NS
	Left, Right            *Link // Left: client (A) — router (B); Right: router (A) — server (B)
}

// NewRouted builds the three-namespace topology.
func NewRouted(t testing.TB, left, right LinkOpts) *Routed {
	t.Helper()
	l := New(t)
	r := &Routed{Lab: l, Client: l.NS("c"), Router: l.NS("r"), Server: l.NS("s")}
	r.Left = l.Connect(r.Client, r.Router, left)
	r.Right = l.Connect(r.Router, r.Server, right)
	for k, v := range map[string]string{
		"net.ipv4.ip_forward":              "1",
		"net.ipv6.conf.all.forwarding":     "1",
		"net.ipv4.conf.all.rp_filter":      "0",
		"net.ipv4.conf.default.rp_filter":  "0",
		"net.ipv6.conf.default.forwarding": "1",
	} {
		if err := r.Router.SetSysctl(k, v); err != nil {
			t.Fatal(err)
		}
	}
	r.Client.mustIP("route", "add", "default", "via", r.Left.B.V4.String())
	r.Client.mustIP("-6", "route", "add", "default", "via", r.Left.B.V6.String())
	r.Server.mustIP("route", "add", "default", "via", r.Right.A.V4.String())
	r.Server.mustIP("-6", "route", "add", "default", "via", r.Right.A.V6.String())
	return r
}

// ServerAddr is the server's address, v6 or not, with port.
func (r *Routed) ServerAddr(v6 bool, port uint16) netip.AddrPort {
	return addrOf(r.Right.B, v6, port)
}

// ClientAddr is the client's address.
func (r *Routed) ClientAddr(v6 bool) netip.Addr { return addrOf(r.Left.A, v6, 0).Addr() }

func addrOf(f Iface, v6 bool, port uint16) netip.AddrPort {
	if v6 {
		return netip.AddrPortFrom(f.V6, port)
	}
	return netip.AddrPortFrom(f.V4, port)
}

// Command returns cmd prepared to run inside the namespace. `ip netns
// exec` execs the command in place, so the returned process's pid is the
// command's own.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command in the namespace and returns its combined output.
func (n *NS) Run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timescale.Scale(30*time.Second))
	defer cancel()
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), n.Name, err, out)
	}
	return string(out), nil
}

// IP runs `ip -n NS args...`.
func (n *NS) IP(args ...string) (string, error) {
	out, err := run("ip", append([]string{"-n", n.Name}, args...)...)
	if err != nil {
		return out, fmt.Errorf("ip -n %s %s: %w: %s", n.Name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

func (n *NS) mustIP(args ...string) {
	n.lab.t.Helper()
	if _, err := n.IP(args...); err != nil {
		n.lab.t.Fatal(err)
	}
}

// Nft applies an nftables ruleset (the `nft -f` language) in the
// namespace. Each namespace has its own ruleset, which goes away with it.
func (n *NS) Nft(ruleset string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timescale.Scale(30*time.Second))
	defer cancel()
	cmd := n.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft -f in %s: %w: %s\nruleset:\n%s", n.Name, err, out, ruleset)
	}
	return nil
}

// MustNft is Nft that fails the test on error.
func (n *NS) MustNft(ruleset string) {
	n.lab.t.Helper()
	if err := n.Nft(ruleset); err != nil {
		n.lab.t.Fatal(err)
	}
}

func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timescale.Scale(30*time.Second))
	defer cancel()
	var b bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

// cleanup kills whatever still runs in the lab's namespaces (only this
// test can have started it) and deletes them.
func (l *Lab) cleanup() {
	l.mu.Lock()
	nss := l.nss
	l.nss = nil
	l.mu.Unlock()
	for i := len(nss) - 1; i >= 0; i-- {
		n := nss[i]
		if out, err := run("ip", "netns", "pids", n.Name); err == nil {
			for _, f := range strings.Fields(out) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if out, err := run("ip", "netns", "del", n.Name); err != nil {
			l.t.Errorf("ip netns del %s: %v: %s", n.Name, err, out)
		}
		if _, err := os.Stat("/run/netns/" + n.Name); err == nil {
			l.t.Errorf("namespace %s still exists after cleanup", n.Name)
		} else {
			removeOwner(n.Name)
		}
	}
}
