package metrics

import (
	"net/netip"
	"testing"
)

func TestPeerLabel(t *testing.T) {
	for _, c := range []struct{ flag, dst, want string }{
		{"addr", "198.18.0.7:80", "198.18.0.7"},
		{"addr", "[::ffff:198.18.0.7]:80", "198.18.0.7"},
		{"prefix/24", "198.18.0.7:80", "198.18.0.0/24"},
		{"prefix/64", "198.18.0.7:80", "198.18.0.7/32"},
		{"prefix/64", "[fd00:1:2:3:4::9]:443", "fd00:1:2:3::/64"},
		{"prefix/24", "0.0.0.0:0", ""},
	} {
		p, err := ParsePeer(c.flag)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.label(netip.MustParseAddrPort(c.dst)); got != c.want {
			t.Errorf("--metrics-peer=%s: %s labelled %q, want %q", c.flag, c.dst, got, c.want)
		}
	}
	for _, bad := range []string{"", "prefix", "prefix/129", "prefix/-1", "cidr/24", "yes"} {
		if _, err := ParsePeer(bad); err == nil {
			t.Errorf("--metrics-peer=%q accepted", bad)
		}
	}
}
