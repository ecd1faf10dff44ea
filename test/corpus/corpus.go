// Package corpus is the labelled fault corpus of the diagnosis: cases
// built in network namespaces (internal/netlab), each with the cause the
// lab gave it and the diagnoses that name that cause correctly, recorded
// with `sendtrace record` into testdata, and the scoring of what the
// diagnosis made of each recording (a confusion matrix, and the targets
// docs/diagnosis.md prints).
package corpus

import (
	"fmt"
	"slices"
	"strings"
)

// Causes: what the lab did, whatever the diagnosis calls it.
const (
	PeerReset        = "peer-reset"
	MiddleboxIdle    = "middlebox-idle-reset"
	MiddleboxIdleDrp = "middlebox-idle-drop"
	BlackHolePath    = "black-hole-path"
	BlackHoleRemote  = "black-hole-remote-firewall"
	PMTU             = "pmtu-black-hole"
	LocalDrop        = "local-drop"
	ICMPUnreachable  = "icmp-unreachable"
	Refused          = "refused"
	ZeroWindow       = "zero-window"
	RetryStorm       = "retry-storm"
	KeepaliveExpiry  = "keepalive-expiry"
	UserTimeout      = "user-timeout-expiry"
	AppTimeout       = "app-timeout-healthy"
	Healthy          = "healthy"
)

// Causes lists every cause, in the matrix's column order.
var Causes = []string{PeerReset, MiddleboxIdle, MiddleboxIdleDrp, BlackHolePath, BlackHoleRemote, PMTU,
	LocalDrop, ICMPUnreachable, Refused, ZeroWindow, RetryStorm, KeepaliveExpiry, UserTimeout, AppTimeout, Healthy}

// None is the answer of a recording with no diagnosis.
const None = "none"

// correct is, for each cause, the diagnoses that name it; the first is
// the one a correct answer must contain (None: no diagnosis at all).
var correct = map[string][]string{
	PeerReset:        {"peer-reset"},
	MiddleboxIdle:    {"idle-reset"},
	MiddleboxIdleDrp: {"idle-reset"},
	BlackHolePath:    {"black-hole"},
	BlackHoleRemote:  {"black-hole"},
	PMTU:             {"pmtu-black-hole"},
	LocalDrop:        {"local-drop"},
	ICMPUnreachable:  {"refused-unreachable"},
	Refused:          {"refused-unreachable"},
	ZeroWindow:       {"backpressure"},
	// Each refused connection of a storm is also refused-unreachable.
	RetryStorm:      {"retry-storm", "refused-unreachable"},
	KeepaliveExpiry: {"black-hole"},
	UserTimeout:     {"black-hole"},
	AppTimeout:      {None},
	Healthy:         {None},
}

// Case is one fault, made one way, with its true cause.
type Case struct {
	Name      string // file stem of its recording and label
	Cause     string // one of Causes: what the lab did
	Behaviour string // reqresp, upload, rate-upload, download, idle, udp
	Client    string // actor, peer (the lab's clients), curl, python, node, go, iperf3
	When      string // handshake, mid (mid-stream), idle (after an idle period)
	Where     string // peer, middlebox, path, local
	IPv6      bool
	// Also lists diagnoses that count as correct for this case beyond
	// its cause's, with the reason in Note.
	Also []string
	Note string // how the case is built, and why it is labelled so
}

// Correct returns the diagnoses that count as naming c's cause, the one
// that must be present first.
func (c Case) Correct() []string { return append(slices.Clone(correct[c.Cause]), c.Also...) }

// Family is "v4" or "v6".
func (c Case) Family() string {
	if c.IPv6 {
		return "v6"
	}
	return "v4"
}

// scenario is a row of the table: one way to make a fault, crossed with
// the families in fams.
type scenario struct {
	cause, behaviour, client, when, where string
	fams                                  string // "4", "6" or "46"
	also                                  []string
	note                                  string
}

// table is the corpus. Each row is made over IPv4, IPv6 or both; see
// docs/diagnosis.md for the crossings left out.
var table = []scenario{
	// Peer reset: the server aborts (SO_LINGER 0) instead of answering.
	{PeerReset, "upload", "actor", "mid", "peer", "46", nil, "actor server in reset mode: accept, wait 200ms, close with SO_LINGER 0, while the client sends"},
	{PeerReset, "reqresp", "curl", "mid", "peer", "46", nil, "GET /reset: the HTTP server hijacks the connection and resets it"},
	{PeerReset, "reqresp", "python", "mid", "peer", "4", nil, "http.client GET /reset"},
	{PeerReset, "reqresp", "go", "mid", "peer", "46", nil, "net/http GET /reset"},
	{PeerReset, "download", "curl", "mid", "peer", "4", nil, "GET /reset?after=262144: the server resets after 256 KiB of the body"},
	{PeerReset, "upload", "iperf3", "mid", "peer", "4", nil, "iperf3 -c for 2s: its server ends the test by closing the data connection with the client's data unread, which resets it; iperf3 expects that reset, but it is one, from the peer"},

	// A middlebox forgets an idle flow (conntrack, 2 s) and resets or drops.
	{MiddleboxIdle, "idle", "peer", "idle", "middlebox", "46", nil, "raw pooled connection silent 3.5s; the router resets the forgotten flow"},
	{MiddleboxIdle, "idle", "node", "idle", "middlebox", "4", nil, "Node http.Agent keepAlive reuses the socket after 3.5s"},
	{MiddleboxIdle, "idle", "python", "idle", "middlebox", "46", nil, "http.client reuses its connection after 3.5s"},
	{MiddleboxIdle, "idle", "go", "idle", "middlebox", "46", nil, "net/http Transport reuses its idle connection after 3.5s"},
	{MiddleboxIdleDrp, "idle", "peer", "idle", "middlebox", "46", nil, "as the reset form, but the router drops the forgotten flow's packets"},

	// Black holes: the router (path) or the server's host (remote firewall)
	// starts to drop the client's packets.
	{BlackHoleRemote, "upload", "actor", "mid", "peer", "46", nil, "the server host's input chain drops the client after 0.5s of 64 KiB writes (full-size segments acknowledged before)"},
	{BlackHoleRemote, "rate-upload", "curl", "mid", "peer", "4", nil, "six curl uploads at 200 KB/s, 0.5s apart; the server host drops the client at 3.5s"},
	{BlackHoleRemote, "rate-upload", "go", "mid", "peer", "6", nil, "net/http PUT at 200 KB/s; the server host drops the client after 1.5s"},
	{BlackHoleRemote, "handshake", "actor", "handshake", "peer", "4", nil, "the server host drops the client's data right after the handshake"},
	{BlackHolePath, "upload", "actor", "mid", "path", "46", nil, "the router drops client→server after 1.5s of 64 KiB writes"},
	{BlackHolePath, "upload", "iperf3", "mid", "path", "4", nil, "iperf3 -c, the router drops client→server after 1s"},
	{BlackHolePath, "rate-upload", "python", "mid", "path", "46", nil, "http.client PUT at 200 KB/s; the router drops after 1.5s"},
	{BlackHolePath, "reqresp", "curl", "handshake", "path", "46", nil, "the router drops the SYNs: the connect times out (tcp_syn_retries=2)"},
	{BlackHolePath, "reqresp", "python", "handshake", "path", "4", nil, "socket.connect into a router that drops the SYNs"},

	// PMTU black hole: a 1280-byte hop whose ICMP errors are dropped.
	{PMTU, "reqresp", "peer", "mid", "path", "46", nil, "a pooled connection's small requests pass, then one 20000-byte request"},
	{PMTU, "upload", "curl", "mid", "path", "46", nil, "curl PUT of 1 MB: the handshake and headers pass, full-size segments do not"},
	{PMTU, "upload", "iperf3", "mid", "path", "4", nil, "iperf3 -c: the control connection passes, the data does not"},
	{PMTU, "upload", "go", "mid", "path", "4", nil, "net/http PUT of 1 MB"},

	// The client's own firewall drops its packets.
	{LocalDrop, "upload", "actor", "mid", "local", "46", nil, "the client host's output chain drops its data after the handshake"},
	{LocalDrop, "reqresp", "curl", "handshake", "local", "46", nil, "the client host's output chain drops the SYNs"},
	{LocalDrop, "udp", "actor", "mid", "local", "46", nil, "connected UDP sends, the output chain drops them (EPERM)"},
	{LocalDrop, "udp", "python", "mid", "local", "4", nil, "python socket UDP sends into the output chain's drop"},
	{LocalDrop, "rate-upload", "python", "mid", "local", "4", nil, "http.client PUT at 200 KB/s; the client's output chain drops after 1.5s"},

	// ICMP unreachable from the router.
	{ICMPUnreachable, "reqresp", "curl", "handshake", "path", "46", nil, "the router answers the SYN with host unreachable"},
	{ICMPUnreachable, "reqresp", "python", "handshake", "path", "4", nil, "socket.connect answered with host unreachable"},
	{ICMPUnreachable, "udp", "actor", "mid", "path", "46", nil, "connected UDP sends with IP_RECVERR answered with host unreachable (without it, UDP keeps a host unreachable from the sender)"},

	// Nothing listens.
	{Refused, "reqresp", "curl", "handshake", "peer", "46", nil, "curl to a port nothing listens on"},
	{Refused, "reqresp", "python", "handshake", "peer", "4", nil, "http.client to a closed port"},
	{Refused, "reqresp", "go", "handshake", "peer", "6", nil, "net/http to a closed port"},
	{Refused, "reqresp", "node", "handshake", "peer", "4", nil, "node http.get to a closed port"},
	{Refused, "udp", "actor", "mid", "peer", "46", nil, "connected UDP sends to a closed port (port unreachable)"},

	// A receiver that never reads: the send buffer fills.
	{ZeroWindow, "upload", "actor", "mid", "peer", "46", nil, "non-blocking 16 KiB writes to a server that never reads"},
	{ZeroWindow, "upload", "python", "mid", "peer", "4", nil, "python non-blocking socket.send to a server that never reads"},
	{ZeroWindow, "upload", "node", "mid", "peer", "4", nil, "node socket.write to a server that never reads (libuv's EAGAIN)"},

	// Reconnecting at once after each refusal.
	{RetryStorm, "reqresp", "peer", "handshake", "peer", "46", nil, "20 connects 20ms apart to a closed port"},
	{RetryStorm, "reqresp", "python", "handshake", "peer", "4", nil, "python reconnect loop, 30 connects to a closed port"},
	{RetryStorm, "reqresp", "node", "handshake", "peer", "4", nil, "node reconnect loop, 30 connects to a closed port"},

	// Keepalive and TCP_USER_TIMEOUT end a connection into a black hole.
	{KeepaliveExpiry, "idle", "python", "idle", "peer", "46", []string{"idle-reset"}, "keepalive 1s/1s/2 probes on an idle connection; the server host drops the client during the idle; idle-reset also names the silence that kept the failure hidden"},
	{KeepaliveExpiry, "idle", "peer", "idle", "path", "4", []string{"idle-reset"}, "raw pooled connection with keepalive 1s, the router drops during the idle"},
	{UserTimeout, "rate-upload", "python", "mid", "peer", "46", nil, "TCP_USER_TIMEOUT 2s, 16 KiB every 100ms; the server host drops the client after 1s"},

	// The application gives up on a healthy, slow server.
	{AppTimeout, "reqresp", "curl", "mid", "peer", "46", nil, "curl -m 1 against /sleep?d=3s"},
	{AppTimeout, "reqresp", "python", "mid", "peer", "4", nil, "http.client timeout=1 against /sleep?d=3s"},
	{AppTimeout, "reqresp", "go", "mid", "peer", "4", nil, "http.Client.Timeout 1s against /sleep?d=3s"},
	{AppTimeout, "download", "curl", "mid", "peer", "4", nil, "curl -m 1 on a download served at 100 KB/s"},

	// Controls: nothing fails.
	{Healthy, "upload", "go", "mid", "peer", "4", nil, "net/http PUT of 20 MB as fast as it goes: Go's non-blocking writes meet EAGAIN with the window open, which is no failure"},
	{Healthy, "download", "curl", "mid", "peer", "6", nil, "curl download of 20 MB"},
	{Healthy, "idle", "peer", "idle", "middlebox", "4", nil, "keepalive 1s shorter than the middlebox's 2s idle timeout keeps the flow"},
}

// Cases returns the corpus, one case per row and family.
func Cases() []Case {
	var out []Case
	for _, s := range table {
		for _, f := range s.fams {
			c := Case{Cause: s.cause, Behaviour: s.behaviour, Client: s.client, When: s.when, Where: s.where,
				IPv6: f == '6', Also: s.also, Note: s.note}
			c.Name = strings.Join([]string{c.Cause, c.Behaviour, c.Client, c.When, c.Family()}, "_")
			out = append(out, c)
		}
	}
	return out
}

// Lookup returns the case named name.
func Lookup(name string) (Case, error) {
	for _, c := range Cases() {
		if c.Name == name {
			return c, nil
		}
	}
	return Case{}, fmt.Errorf("no corpus case %q", name)
}
