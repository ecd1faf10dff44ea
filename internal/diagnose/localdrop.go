package diagnose

import (
	"fmt"
	"strings"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

// localDrops is what this host's own kernel dropped of one socket's
// packets (drop events): a firewall rule, a qdisc, a missing route or
// neighbour. It is the evidence that tells a local drop from a black hole
// on the path, where the packets leave the host and are never answered.
type localDrops struct {
	n, out, in    int
	segs          uint64
	firstMono     uint64
	lastMono      uint64
	reason        string // of the latest drop
	location, dev string
	dir           events.DropDir
	seqs          [8]uint32 // the latest TCP sequences dropped on the way out
	nseq          int
}

// ProtocolDrop reports whether a drop is TCP's own bookkeeping on the
// way in: a duplicate or stale segment from the peer (TCP_OLD_DATA,
// TCP_OLD_ACK, ...) or unread data purged at close. Those are normal
// protocol work and say nothing about where a socket's packets die.
func ProtocolDrop(ev *events.Event) bool {
	return ev.DropDir == events.DropIn && (strings.HasPrefix(ev.DropReason, "TCP_") || ev.DropReason == "QUEUE_PURGE")
}

// add keeps a drop as evidence, unless it is a ProtocolDrop.
func (d *localDrops) add(ev *events.Event) {
	if ProtocolDrop(ev) {
		return
	}
	if d.n == 0 {
		d.firstMono = ev.Mono
	}
	d.n++
	d.segs += uint64(ev.Segs)
	d.lastMono = ev.Mono
	d.reason, d.location, d.dev, d.dir = ev.DropReason, ev.DropLocation, ev.DropDev, ev.DropDir
	if ev.DropDir == events.DropIn {
		d.in++
		return
	}
	d.out++
	if ev.Protocol == events.ProtoTCP {
		d.seqs[d.nseq%len(d.seqs)] = ev.Seq
		d.nseq++
	}
}

func (d *localDrops) droppedSeq(seq uint32) bool {
	for i := range min(d.nseq, len(d.seqs)) {
		if d.seqs[i] == seq {
			return true
		}
	}
	return false
}

// localDrop: the connection failed (a timeout, an unreachable, EPERM)
// while this host itself dropped its packets during the failing episode.
// Without that evidence nothing is said here: a black hole on the path
// keeps its own rule. When a host's own output chain drops data after the
// handshake, TCP may never retransmit (the data never counted as sent):
// the drops are then the only evidence, and the timeout follows from
// zero-window-style probes.
func localDrop(s *sockState, ev *events.Event) (Diagnosis, bool) {
	d := &s.drops
	if d.n == 0 {
		return Diagnosis{}, false
	}
	r := &s.run
	episode := s.firstMono
	if r.n > 0 {
		episode = r.startMono - uint64(min(r.firstRTO, time.Duration(r.startMono)))
	}
	if d.lastMono < episode {
		return Diagnosis{}, false
	}
	dg := base(s, ev, RuleLocalDrop, "Dropped by this host")
	fillRun(&dg, s, ev)
	dg.Evidence.Drops = d.n
	dg.Evidence.DropReason = d.reason
	dg.Evidence.DropLocation = d.location
	dg.Evidence.DropDev = d.dev
	dg.Evidence.DropDir = d.dir.String()

	where := d.reason
	if d.location != "" {
		where += " in " + d.location
	}
	if d.dev != "" {
		where += " on " + d.dev
	}
	dir := "on their way out"
	switch {
	case d.in > 0 && d.out > 0:
		dir = fmt.Sprintf("%d on their way out, %d on their way in", d.out, d.in)
	case d.in > 0:
		dir = "on their way in (the peer's answers)"
	}
	span := time.Duration(0)
	if ev.Mono > d.firstMono {
		span = time.Duration(ev.Mono - d.firstMono)
	}
	text := fmt.Sprintf("this host's kernel dropped %d of the socket's packets %s (%s) over %s", d.n, dir, where, format.Duration(span))
	switch {
	case r.n > 0:
		text += fmt.Sprintf("; %d retransmits of the stuck segment", r.n)
	case ev.Protocol == events.ProtoTCP:
		text += "; no retransmit: the data never left this host, so TCP only probed"
	}
	if ev.Errno != 0 {
		text += "; then " + events.ErrnoName(ev.Errno)
		if dg.Evidence.Setting != "" {
			text += " (" + dg.Evidence.Setting + ")"
		}
	} else {
		text += "; still failing when the trace ended"
	}
	dg.Evidence.Text = text

	switch {
	case r.n > 0 && d.droppedSeq(r.seq):
		dg.Confidence, dg.ConfidenceWhy = High, "the stuck segment itself was dropped by this host, every time it was sent"
	case r.n == 0 && d.out > 0:
		dg.Confidence, dg.ConfidenceWhy = High, "the socket's packets were dropped by this host and none was retransmitted: they never reached the path"
	case d.in > 0 && d.out == 0:
		dg.Confidence, dg.ConfidenceWhy = High, "the peer's packets reached this host and were dropped here, so its acknowledgements never arrived"
	default:
		dg.Confidence, dg.ConfidenceWhy = Medium, "this host dropped the socket's packets during the failure, but not provably the stuck segment; the path may also lose it"
	}
	dg.NextStep = dropNextStep(d, s.dst)
	return dg, true
}

// dropNextStep names where to look for the kernel's reason.
func dropNextStep(d *localDrops, dst interface{ String() string }) string {
	r := d.reason
	switch {
	case r == "NETFILTER_DROP" || strings.HasPrefix(r, "NETFILTER") || strings.HasPrefix(r, "NF_"):
		chain := "output"
		if d.dir == events.DropIn {
			chain = "input"
		}
		return "A firewall rule on this host drops the flow (" + chain + " path): run nft list ruleset (and iptables-save) in the socket's network namespace, find the rule whose counters grow, and fix or remove it."
	case strings.HasPrefix(r, "QDISC") || strings.HasPrefix(r, "TC_") || strings.Contains(r, "QUEUE"):
		dev := "DEV"
		if d.dev != "" {
			dev = d.dev
		}
		return "A queue on this host overflows: tc -s qdisc show dev " + dev + " shows its drops and limit; raise the limit, pace the sender, or fix the shaping rule."
	case strings.Contains(r, "NOROUTE") || strings.Contains(r, "OUTNOROUTES") || strings.Contains(r, "INADDRERRORS"):
		return "This host has no route for the destination: ip route get " + addrOnly(dst) + " shows the lookup; restore the route (or the default route) in the socket's network namespace."
	case strings.HasPrefix(r, "NEIGH"):
		return "The next hop does not answer ARP/ND: ip neigh show shows it FAILED or INCOMPLETE; check the link and the gateway's address."
	}
	return "The kernel's drop reason is " + r + " (include/net/dropreason-core.h says what it means); perf or dropwatch on skb:kfree_skb shows the exact place."
}

func addrOnly(ap interface{ String() string }) string {
	s := ap.String()
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		s = strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]")
	}
	if s == "" || s == "invalid AddrPort" {
		return "DST"
	}
	return s
}
