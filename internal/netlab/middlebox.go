package netlab

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// Middlebox is what a stateful load balancer, NAT or firewall does to a
// flow it has forgotten: the router tracks connections with conntrack,
// forgets an established flow after Idle without packets, and then either
// resets (Reset) or silently drops the flow's next packets.
type Middlebox struct {
	Idle  time.Duration // whole seconds; conntrack's timeout has that granularity
	Reset bool          // answer packets of forgotten flows with a TCP reset; false: drop them
}

// ApplyMiddlebox turns r's router into m. conntrack's timeouts and its
// loose pickup of mid-stream flows are per network namespace, so nothing
// outside the lab changes.
func (r *Routed) ApplyMiddlebox(t testing.TB, m Middlebox) {
	t.Helper()
	secs := max(1, int(m.Idle/time.Second))
	verdict := "drop"
	if m.Reset {
		verdict = "reject with tcp reset"
	}
	// The ruleset goes first: it is what loads conntrack into the
	// namespace, and the sysctls exist only after that.
	r.Router.MustNft(fmt.Sprintf(`table inet middlebox {
	chain forward_filter {
		type filter hook forward priority 0; policy accept;
		ct state invalid meta l4proto tcp %[1]s
		ct state new tcp flags & (syn | ack) != syn %[1]s
		ct state established,related accept
		ct state new accept
	}
}`, verdict))
	r.Router.MustSetSysctl("net.netfilter.nf_conntrack_tcp_loose", "0")
	r.Router.MustSetSysctl("net.netfilter.nf_conntrack_tcp_timeout_established", strconv.Itoa(secs))
}

// ApplyPMTUBlackHole narrows the router's egress towards the server to
// mtu bytes and drops the ICMP errors (fragmentation needed, packet too
// big) that would tell the client, as a misconfigured firewall does. The
// server's own link keeps its MTU, so the server still advertises the
// larger MSS and the client sends segments that cannot pass.
func (r *Routed) ApplyPMTUBlackHole(t testing.TB, mtu int) {
	t.Helper()
	r.Router.mustIP("link", "set", r.Right.A.Name, "mtu", strconv.Itoa(mtu))
	r.Router.MustNft(`table inet pmtu {
	chain output_filter {
		type filter hook output priority 0; policy accept;
		icmp type destination-unreachable icmp code frag-needed drop
		icmpv6 type packet-too-big drop
	}
	chain forward_filter {
		type filter hook forward priority 0; policy accept;
		icmp type destination-unreachable icmp code frag-needed drop
		icmpv6 type packet-too-big drop
	}
}`)
}

// Balance makes r's router a load balancer for vip: it DNATs vip to dst
// (on the server) and SNATs the client's address and port into its own
// range, so no address or port matches across the ends of a connection:
// only the sequence numbers do. The client's ports are 20000-29999 and the
// balancer's 40000-49999, so that they never meet by chance either.
func (r *Routed) Balance(t testing.TB, vip, dst netip.AddrPort) {
	t.Helper()
	r.Router.MustNft(fmt.Sprintf(`table ip lb {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %s tcp dport %d dnat to %s
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ip daddr %s tcp dport %d snat to %s:40000-49999 random
	}
}`, vip.Addr(), vip.Port(), dst, dst.Addr(), dst.Port(), r.Right.A.V4))
	// A segment of a forgotten flow is not translated; it must still be
	// routed on, to the middlebox's reject rule.
	r.Router.mustIP("route", "add", vip.Addr().String()+"/32", "via", r.Right.B.V4.String())
	r.Client.MustSetSysctl("net.ipv4.ip_local_port_range", "20000 29999")
}
