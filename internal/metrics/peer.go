package metrics

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Peer says whether, and how coarsely, the counters carry the peer's
// address as a label: none (the default), each address, or each prefix
// (IPv4 /N and IPv6 /N, N capped at each family's length). The kernel's
// totals are kept per destination, so the counts stay exact either way.
type Peer struct {
	mode string // "none", "addr" or "prefix"
	bits int
}

// ParsePeer reads --metrics-peer: none, addr or prefix/N.
func ParsePeer(s string) (Peer, error) {
	switch {
	case s == "none" || s == "addr":
		return Peer{mode: s}, nil
	case strings.HasPrefix(s, "prefix/"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "prefix/"))
		if err == nil && n >= 0 && n <= 128 {
			return Peer{mode: "prefix", bits: n}, nil
		}
	}
	return Peer{}, fmt.Errorf("invalid --metrics-peer %q: give none, addr or prefix/N (N from 0 to 128)", s)
}

func (p Peer) enabled() bool { return p.mode == "addr" || p.mode == "prefix" }

// label is the peer label of a destination; "" when it has none (a
// failure before the socket had a peer).
func (p Peer) label(dst netip.AddrPort) string {
	a := dst.Addr().Unmap()
	if !a.IsValid() || a.IsUnspecified() {
		return ""
	}
	if p.mode == "addr" {
		return a.String()
	}
	pf, err := a.Prefix(min(p.bits, a.BitLen()))
	if err != nil {
		return ""
	}
	return pf.String()
}

// descs are the metrics whose counts come from the kernel's totals, with
// a peer label when Peer asks for one.
type descs struct {
	sendFailures, retransmits, drops, resets *prometheus.Desc
}

func newDescs(p Peer) descs {
	labels := func(first string) []string {
		if p.enabled() {
			return []string{first, "workload", "peer"}
		}
		return []string{first, "workload"}
	}
	return descs{
		sendFailures: prometheus.NewDesc("sendtrace_send_failures_total",
			"Failed send-family calls, by the errno the application got, counted by the kernel.", labels("errno"), nil),
		retransmits: prometheus.NewDesc("sendtrace_retransmitted_segments_total",
			"TCP segments the workload's sockets retransmitted, by kind (rto, fast, tlp, syn, synack; untraced: counted by the kernel with no retransmit event), exactly as TcpRetransSegs counts them.", labels("kind"), nil),
		drops: prometheus.NewDesc("sendtrace_drops_total",
			"Packets of the workload's sockets dropped on this host, by the kernel's drop reason.", labels("reason"), nil),
		resets: prometheus.NewDesc("sendtrace_resets_total",
			"TCP resets received from the peer or sent by this host, counted by the kernel.", labels("direction"), nil),
	}
}

// peerLabel names dst's peer, admitting it while there is room under
// Config.MaxPeers; the rest are LabelOther. s.mu is held.
func (s *Sink) peerLabel(dst netip.AddrPort) string {
	l := s.cfg.Peer.label(dst)
	if l == "" {
		return ""
	}
	if _, ok := s.peers[l]; ok {
		return l
	}
	if len(s.peers) >= s.cfg.MaxPeers {
		return LabelOther
	}
	s.peers[l] = struct{}{}
	return l
}
