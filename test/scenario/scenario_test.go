package scenario_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// monoSlack absorbs the difference between the kernel's
// bpf_ktime_get_ns (the NMI-safe fast clock) and the actor's vDSO
// CLOCK_MONOTONIC reads, which may disagree by a few microseconds. It only
// widens an ordering check; nothing here measures speed.
const monoSlack = uint64(time.Millisecond)

func scenarioContext(t *testing.T) context.Context {
	testutil.RequireRoot(t)
	return testutil.Context(t, 3*time.Minute)
}

func startServer(t *testing.T, ctx context.Context, ns *netlab.NS, mode string, addr netip.AddrPort, extra ...string) *netlab.Actor {
	t.Helper()
	srv := ns.StartActor(t, actorBin, append([]string{"server", "-mode", mode, "-listen", addr.String()}, extra...)...)
	if _, err := srv.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	return srv
}

// startClient starts a client actor and waits until it is parked at phase
// "start", before it has created its socket.
func startClient(t *testing.T, ctx context.Context, ns *netlab.NS, args ...string) *netlab.Actor {
	t.Helper()
	cl := ns.StartActor(t, actorBin, append([]string{"client"}, args...)...)
	p, err := cl.WaitPhase(ctx, "start")
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != cl.PID() {
		t.Fatalf("actor pid %d, process %d", p.PID, cl.PID())
	}
	return cl
}

func release(t *testing.T, a *netlab.Actor, phase string) {
	t.Helper()
	if err := a.Release(phase); err != nil {
		t.Fatal(err)
	}
}

// finish waits for a client and returns its report; the report is the
// kernel's truth the tracer's events are checked against.
func finish(t *testing.T, ctx context.Context, a *netlab.Actor) *actorreport.Report {
	t.Helper()
	r, err := a.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Error != "" {
		t.Fatalf("%v: %s", a, r.Error)
	}
	if len(r.Sockets) != 1 || r.Sockets[0].Cookie == 0 {
		t.Fatalf("%v: want one socket with a cookie: %+v", a, r.Sockets)
	}
	t.Logf("actor pid %d observed: %+v", r.PID, r.Sockets[0])
	return r
}

func pidArg(a *netlab.Actor) string { return "--pid=" + strconv.Itoa(a.PID()) }

func familyName(ap string) string {
	if netip.MustParseAddrPort(ap).Addr().Is4() {
		return "inet"
	}
	return "inet6"
}

// checkOwner checks that e is attributed to the actor, asynchronous events
// included.
func checkOwner(t *testing.T, e *Event, r *actorreport.Report) {
	t.Helper()
	if e.PID != uint32(r.PID) || !e.OwnerKnown || e.Comm != r.Comm {
		t.Errorf("%s: want pid %d, comm %q, owner_known true", e, r.PID, r.Comm)
	}
}

// checkSrc checks an event's source against the socket's local address.
// Once a TCP socket is closed the kernel has released its port
// (inet_num is 0), so an event read from the socket then may show port 0;
// that is logged rather than failed, because the schema only promises
// ip:port or empty.
func checkSrc(t *testing.T, e *Event, local string) {
	t.Helper()
	if e.Src == "" || e.Src == local {
		return
	}
	got, want := netip.MustParseAddrPort(e.Src), netip.MustParseAddrPort(local)
	if got.Addr() == want.Addr() && got.Port() == 0 && e.State == "CLOSE" {
		t.Logf("note: %s event on a closed socket shows src %s, the socket's was %s", e.Kind, e.Src, local)
		return
	}
	t.Errorf("%s: src, want %s", e, local)
}

// stackOnly reports whether the runs use --no-syscall-layer (through
// SENDTRACE_ARGS): failed sends are then seen at the socket layer only.
func stackOnly() bool {
	return slices.Contains(extraArgs, "--no-syscall-layer")
}

// joinedLayer is the layer of a failed send that the socket layer saw:
// joined with its syscall's exit, or the stack alone with
// --no-syscall-layer.
func joinedLayer() string {
	if stackOnly() {
		return "stack"
	}
	return "stack+syscall"
}

// checkSendErrors matches the actor's failed sends, one for one and in
// order, with the tracer's send_error events for the socket. layer is the
// layer the errno must be attributed to.
func checkSendErrors(t *testing.T, evs []*Event, r *actorreport.Report, layer string) []*Event {
	t.Helper()
	s := r.Sockets[0]
	failed := s.Failed()
	got := OfKind(evs, "send_error", s.Cookie)
	if len(got) != len(failed) {
		t.Errorf("socket cookie %d: %d send_error events %v, the actor saw %d failed sends", s.Cookie, len(got), errnoNames(got), len(failed))
		if len(got) > len(failed) {
			got = got[:len(failed)]
		} else {
			failed = failed[:len(got)]
		}
	}
	for i, e := range got {
		f := failed[i]
		checkOwner(t, e, r)
		if e.Errno != int32(f.Errno) || e.ErrnoName != f.ErrnoName {
			t.Errorf("%s: errno %d %s, actor got %d %s", e, e.Errno, e.ErrnoName, f.Errno, f.ErrnoName)
		}
		if e.Dst != s.Remote || e.Family != familyName(s.Remote) || e.Proto != s.Proto {
			t.Errorf("%s: want dst %s, family %s, proto %s", e, s.Remote, familyName(s.Remote), s.Proto)
		}
		checkSrc(t, e, s.Local)
		if e.Bytes != uint32(f.Size) {
			t.Errorf("%s: bytes %d, the actor asked for %d", e, e.Bytes, f.Size)
		}
		if e.Layer == nil || *e.Layer != layer {
			t.Errorf("%s: want layer %q", e, layer)
		}
		if e.Syscall == nil || *e.Syscall != f.Syscall {
			t.Errorf("%s: want syscall %q", e, f.Syscall)
		}
		if layer == "syscall" && e.StackErrno != nil {
			t.Errorf("%s: stack_errno on an error the stack never saw", e)
		}
		if e.StackErrno != nil && *e.StackErrno != e.Errno {
			t.Errorf("%s: stack_errno %d differs from errno %d", e, *e.StackErrno, e.Errno)
		}
		// The event must be this very syscall, not an earlier or later one.
		if e.Mono+monoSlack < f.MonoBefore || e.Mono > f.MonoAfter+monoSlack {
			t.Errorf("%s: mono_ns %d outside the actor's send [%d, %d]", e, e.Mono, f.MonoBefore, f.MonoAfter)
		}
	}
	return got
}

// checkOnly checks that every event belongs to the actor: what --pid
// promises.
func checkOnly(t *testing.T, evs []*Event, r *actorreport.Report) {
	t.Helper()
	for _, e := range evs {
		if e.PID != uint32(r.PID) || !e.OwnerKnown {
			t.Errorf("--pid %d let through %s", r.PID, e)
		}
	}
}

// 1 and 8: the peer resets (SO_LINGER {1, 0} close) before the client
// sends; the first send reports ECONNRESET and clears sk_err, the next
// gets EPIPE.
func peerReset(t *testing.T, v6 bool) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(v6, port)
	startServer(t, ctx, lab.Server, "reset", dst)
	cl := startClient(t, ctx, lab.Client, "-to", dst.String(), "-await-error-before", "1", "-count", "2", "-size", "1000")
	tr := StartTracer(t, ctx, pidArg(cl))
	release(t, cl, "start")
	r := finish(t, ctx, cl)
	evs := tr.Stop(t)

	s := r.Sockets[0]
	if got := errnoNamesOf(s.Failed()); fmt.Sprint(got) != "[ECONNRESET EPIPE]" {
		t.Fatalf("lab: the actor saw %v, want [ECONNRESET EPIPE]", got)
	}
	checkOnly(t, evs, r)
	sends := checkSendErrors(t, evs, r, joinedLayer())
	resets := OfKind(evs, "receive_reset", s.Cookie)
	if len(resets) != 1 {
		t.Fatalf("%d receive_reset events for cookie %d, want 1", len(resets), s.Cookie)
	}
	rst := resets[0]
	checkOwner(t, rst, r)
	checkSrc(t, rst, s.Local)
	if rst.Dst != s.Remote || rst.Proto != "tcp" || rst.Family != familyName(s.Remote) {
		t.Errorf("%s: want dst %s", rst, s.Remote)
	}
	if len(sends) > 0 && rst.Mono >= sends[0].Mono {
		t.Errorf("receive_reset (mono %d) does not come before the first send_error (mono %d)", rst.Mono, sends[0].Mono)
	}
}

func errnoNamesOf(sends []actorreport.Send) []string {
	var out []string
	for _, s := range sends {
		out = append(out, s.ErrnoName)
	}
	return out
}

func TestPeerReset(t *testing.T)     { peerReset(t, false) }
func TestPeerResetIPv6(t *testing.T) { peerReset(t, true) }

// stalledPath is a client sending 100 bytes every 100 ms over a connection
// whose server namespace starts to apply verdict to the client's segments
// once the connection is up. tcp_retries2=3 in the client namespace ends it
// within seconds.
type stalledPath struct {
	lab     *netlab.Pair
	clients []*netlab.Actor
	dst     netip.AddrPort
}

func newStalledPath(t *testing.T, ctx context.Context, n int) *stalledPath {
	sp := &stalledPath{lab: netlab.NewPair(t, netlab.LinkOpts{})}
	sp.dst = sp.lab.ServerAddr(false, port)
	startServer(t, ctx, sp.lab.Server, "discard", sp.dst)
	sp.lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", "3")
	for range n {
		sp.clients = append(sp.clients, startClient(t, ctx, sp.lab.Client, "-to", sp.dst.String(), "-pause-connected",
			"-until-error", "-count", "0", "-interval", "100ms", "-size", "100"))
	}
	return sp
}

// run releases the clients, applies verdict once all are connected, and
// returns their reports and the client namespace's TcpRetransSegs delta
// over the stalled phase.
func (sp *stalledPath) run(t *testing.T, ctx context.Context, verdict string) ([]*actorreport.Report, int64) {
	t.Helper()
	sp.connect(t, ctx)
	return sp.stall(t, ctx, verdict)
}

// connect lets every client connect and stops them there.
func (sp *stalledPath) connect(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, c := range sp.clients {
		release(t, c, "start")
		if _, err := c.WaitPhase(ctx, "connected"); err != nil {
			t.Fatal(err)
		}
	}
}

// stall applies verdict to the connected clients' segments and lets them
// send until they fail.
func (sp *stalledPath) stall(t *testing.T, ctx context.Context, verdict string) ([]*actorreport.Report, int64) {
	t.Helper()
	sp.lab.Server.MustNft(fmt.Sprintf(`table inet lab {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr %s tcp dport %d %s
	}
}`, sp.lab.ClientAddr(false), port, verdict))
	before := sp.lab.Client.MustSNMP()
	for _, c := range sp.clients {
		release(t, c, "connected")
	}
	var reps []*actorreport.Report
	for _, c := range sp.clients {
		reps = append(reps, finish(t, ctx, c))
	}
	after := sp.lab.Client.MustSNMP()
	return reps, netlab.Delta(before, after, "TcpRetransSegs")
}

// checkStalled checks one socket's story: retransmits, then error_report
// with the socket's final error, then the send_error carrying it.
func checkStalled(t *testing.T, evs []*Event, r *actorreport.Report, want unix.Errno) (segs int) {
	t.Helper()
	s := r.Sockets[0]
	failed := s.Failed()
	if len(failed) != 1 || failed[0].Errno != int(want) {
		t.Fatalf("lab: the actor saw %v, want [%s]", errnoNamesOf(failed), unix.ErrnoName(want))
	}
	sends := checkSendErrors(t, evs, r, joinedLayer())
	rts := OfKind(evs, "retransmit", s.Cookie)
	reports := OfKind(evs, "error_report", s.Cookie)
	if len(rts) == 0 {
		t.Errorf("no retransmit events for cookie %d", s.Cookie)
	}
	if len(reports) != 1 || reports[0].Errno != int32(want) {
		t.Fatalf("error_report events for cookie %d: %v, want one %s", s.Cookie, errnoNames(reports), unix.ErrnoName(want))
	}
	rep := reports[0]
	checkOwner(t, rep, r)
	for _, e := range rts {
		checkOwner(t, e, r)
		checkSrc(t, e, s.Local)
		if e.Dst != s.Remote || e.Bytes == 0 || e.Proto != "tcp" {
			t.Errorf("%s: want dst %s, a segment length", e, s.Remote)
		}
		if e.Mono > rep.Mono {
			t.Errorf("%s comes after the error_report (mono %d)", e, rep.Mono)
		}
		// TcpRetransSegs counts segments, and a failed attempt only
		// when the kernel counted it: what segs says.
		segs += int(e.Segs)
	}
	if len(sends) == 1 && rep.Mono >= sends[0].Mono {
		t.Errorf("error_report (mono %d) does not come before the send_error (mono %d)", rep.Mono, sends[0].Mono)
	}
	return segs
}

// checkRetransSegs compares the segments of the retransmit events, plus
// those the kernel counted with no event, with the kernel's own counter.
func checkRetransSegs(t *testing.T, tr *Tracer, events int, mib int64) {
	t.Helper()
	untraced := tr.UntracedSegs(t)
	if int64(events)+untraced != mib {
		t.Errorf("retransmit events carry %d segments and %d were untraced, the client namespace's TcpRetransSegs grew by %d", events, untraced, mib)
	}
	if untraced > 0 {
		t.Logf("%d retransmitted segments counted by the kernel without a tracepoint event", untraced)
	}
}

// 2: black hole. The segments of the retransmit events must equal what
// the kernel's own counter says.
func TestBlackHole(t *testing.T) {
	ctx := scenarioContext(t)
	sp := newStalledPath(t, ctx, 1)
	tr := StartTracer(t, ctx, pidArg(sp.clients[0]))
	reps, mib := sp.run(t, ctx, "drop")
	evs := tr.Stop(t)
	checkOnly(t, evs, reps[0])
	n := checkStalled(t, evs, reps[0], unix.ETIMEDOUT)
	checkRetransSegs(t, tr, n, mib)
}

// A socket that existed before sendtrace started is attributed to its
// owner (the task_file iterator seeds it at start): its retransmits and
// error report pass --pid and carry the client's pid, not pid 0 or the
// task that was on the CPU when the retransmit timer fired.
func TestPreexistingSocket(t *testing.T) {
	ctx := scenarioContext(t)
	sp := newStalledPath(t, ctx, 1)
	sp.connect(t, ctx)
	tr := StartTracer(t, ctx, pidArg(sp.clients[0]))
	reps, mib := sp.stall(t, ctx, "drop")
	evs := tr.Stop(t)
	checkOnly(t, evs, reps[0])
	n := checkStalled(t, evs, reps[0], unix.ETIMEDOUT)
	checkRetransSegs(t, tr, n, mib)
}

// 3: ICMP host unreachable from the server namespace. TCP keeps it as a
// soft error that replaces ETIMEDOUT when the retries run out; a connected
// UDP socket with IP_RECVERR gets it on its next send.
func TestHostUnreachable(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		ctx := scenarioContext(t)
		sp := newStalledPath(t, ctx, 1)
		tr := StartTracer(t, ctx, pidArg(sp.clients[0]))
		reps, mib := sp.run(t, ctx, "reject with icmp type host-unreachable")
		evs := tr.Stop(t)
		checkOnly(t, evs, reps[0])
		n := checkStalled(t, evs, reps[0], unix.EHOSTUNREACH)
		checkRetransSegs(t, tr, n, mib)
	})
	t.Run("udp", func(t *testing.T) {
		ctx := scenarioContext(t)
		lab := netlab.NewPair(t, netlab.LinkOpts{})
		dst := lab.ServerAddr(false, port)
		lab.Server.MustNft(fmt.Sprintf(`table ip lab {
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport %d reject with icmp type host-unreachable
	}
}`, port))
		// Host unreachable is not a hard ICMP error for UDP, so only a
		// socket with IP_RECVERR has it raised as sk_err.
		cl := startClient(t, ctx, lab.Client, "-proto", "udp", "-to", dst.String(), "-recverr",
			"-count", "2", "-await-error-before", "2")
		tr := StartTracer(t, ctx, pidArg(cl))
		release(t, cl, "start")
		r := finish(t, ctx, cl)
		evs := tr.Stop(t)
		if got := errnoNamesOf(r.Sockets[0].Failed()); fmt.Sprint(got) != "[EHOSTUNREACH]" {
			t.Fatalf("lab: the actor saw %v, want [EHOSTUNREACH]", got)
		}
		checkOnly(t, evs, r)
		checkSendErrors(t, evs, r, joinedLayer())
	})
}

// 4: a non-blocking socket whose peer never reads.
func TestSendBufferFull(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	startServer(t, ctx, lab.Server, "sink", dst, "-rcvbuf", "65536")
	cl := startClient(t, ctx, lab.Client, "-to", dst.String(), "-nonblock", "-sndbuf", "65536",
		"-until-error", "-count", "0", "-size", "16384")
	tr := StartTracer(t, ctx, pidArg(cl))
	release(t, cl, "start")
	r := finish(t, ctx, cl)
	evs := tr.Stop(t)
	if got := errnoNamesOf(r.Sockets[0].Failed()); fmt.Sprint(got) != "[EAGAIN]" {
		t.Fatalf("lab: the actor saw %v, want [EAGAIN]", got)
	}
	checkOnly(t, evs, r)
	checkSendErrors(t, evs, r, joinedLayer())
}

// 5: seccomp makes sendto on one TCP socket fail with ECOMM before the
// socket layer is reached; only the syscall exit can see it.
func TestSeccompECOMM(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	startServer(t, ctx, lab.Server, "discard", dst)
	cl := startClient(t, ctx, lab.Client, "-to", dst.String(), "-seccomp-ecomm", "-count", "1", "-size", "512")
	tr := StartTracer(t, ctx, pidArg(cl))
	release(t, cl, "start")
	r := finish(t, ctx, cl)
	evs := tr.Stop(t)
	if got := errnoNamesOf(r.Sockets[0].Failed()); fmt.Sprint(got) != "[ECOMM]" {
		t.Fatalf("lab: the actor saw %v, want [ECOMM]", got)
	}
	checkOnly(t, evs, r)
	if stackOnly() {
		// The documented blind spot of --no-syscall-layer: seccomp
		// answers before the socket layer, so nothing sees the call.
		if got := OfKind(evs, "send_error", r.Sockets[0].Cookie); len(got) != 0 {
			t.Errorf("--no-syscall-layer reported %v, an error made before the socket layer", errnoNames(got))
		}
		return
	}
	got := checkSendErrors(t, evs, r, "syscall")
	for _, e := range got {
		if e.Errno != int32(unix.ECOMM) || e.ErrnoName != "ECOMM" || *e.Syscall != "sendto" {
			t.Errorf("%s: want errno %d ECOMM from sendto", e, int(unix.ECOMM))
		}
	}
}

// 6: UDP with DF over the link MTU. This test filters by destination
// instead of pid, so --dst is exercised too.
func TestUDPMessageTooBig(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{MTU: 1400})
	dst := lab.ServerAddr(false, port)
	startServer(t, ctx, lab.Server, "udp", dst)
	cl := startClient(t, ctx, lab.Client, "-proto", "udp", "-to", dst.String(), "-pmtu-do", "-size", "1400", "-count", "1")
	tr := StartTracer(t, ctx, "--dst="+lab.Link.V4Net.String())
	release(t, cl, "start")
	r := finish(t, ctx, cl)
	evs := tr.Stop(t)
	if got := errnoNamesOf(r.Sockets[0].Failed()); fmt.Sprint(got) != "[EMSGSIZE]" {
		t.Fatalf("lab: the actor saw %v, want [EMSGSIZE]", got)
	}
	for _, e := range evs {
		if e.Dst == "" || !lab.Link.V4Net.Contains(netip.MustParseAddrPort(e.Dst).Addr()) {
			t.Errorf("--dst %s let through %s", lab.Link.V4Net, e)
		}
	}
	checkSendErrors(t, evs, r, joinedLayer())
}

// Every send-family syscall, with the size and destination sendtrace
// reads from its arguments: write and writev on a connected socket;
// sendto, sendmsg and sendmmsg naming the destination on an unconnected
// one, whose socket has none. Each fails with EMSGSIZE (UDP with DF over
// the link MTU), so each syscall number and each argument register of the
// architecture under test is checked against what the actor passed.
func TestSendSyscalls(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{MTU: 1400})
	type send struct {
		syscall     string
		v6          bool
		unconnected bool
	}
	sends := []send{
		{"write", false, false}, {"writev", false, false},
		{"sendto", false, true}, {"sendmsg", false, true}, {"sendmmsg", false, true},
		{"sendto", true, true}, {"sendmsg", true, true},
	}
	var clients []*netlab.Actor
	for _, s := range sends {
		args := []string{"-proto", "udp", "-to", lab.ServerAddr(s.v6, port).String(), "-pmtu-do",
			"-size", "1400", "-count", "1", "-syscall", s.syscall}
		if s.unconnected {
			args = append(args, "-unconnected")
		}
		clients = append(clients, startClient(t, ctx, lab.Client, args...))
	}
	tr := StartTracer(t, ctx, "--dst="+lab.Link.V4Net.String(), "--dst="+lab.Link.V6Net.String())
	var reps []*actorreport.Report
	for _, c := range clients {
		release(t, c, "start")
		reps = append(reps, finish(t, ctx, c))
	}
	evs := tr.Stop(t)
	for i, r := range reps {
		if got := errnoNamesOf(r.Sockets[0].Failed()); fmt.Sprint(got) != "[EMSGSIZE]" {
			t.Fatalf("lab: %+v: the actor saw %v, want [EMSGSIZE]", sends[i], got)
		}
		checkSendErrors(t, evs, r, joinedLayer())
	}
}

// 7: two actors fail the same way at the same time; --pid A must show all
// of A's story, asynchronous events included, and nothing of B's.
func TestPIDFilterTwoActors(t *testing.T) {
	checkAonly := func(t *testing.T, evs []*Event, a, b *actorreport.Report) {
		checkOnly(t, evs, a)
		for _, e := range evs {
			if e.Cookie == b.Sockets[0].Cookie || e.PID == uint32(b.PID) {
				t.Errorf("--pid %d showed actor B's (pid %d) %s", a.PID, b.PID, e)
			}
		}
	}
	t.Run("reset", func(t *testing.T) {
		ctx := scenarioContext(t)
		lab := netlab.NewPair(t, netlab.LinkOpts{})
		dst := lab.ServerAddr(false, port)
		startServer(t, ctx, lab.Server, "reset", dst)
		args := []string{"-to", dst.String(), "-await-error-before", "1", "-count", "2", "-size", "1000"}
		a := startClient(t, ctx, lab.Client, args...)
		b := startClient(t, ctx, lab.Client, args...)
		tr := StartTracer(t, ctx, pidArg(a))
		release(t, a, "start")
		release(t, b, "start")
		ra, rb := finish(t, ctx, a), finish(t, ctx, b)
		evs := tr.Stop(t)
		checkAonly(t, evs, ra, rb)
		checkSendErrors(t, evs, ra, joinedLayer())
		if n := len(OfKind(evs, "receive_reset", ra.Sockets[0].Cookie)); n != 1 {
			t.Errorf("%d receive_reset events for A, want 1", n)
		}
	})
	t.Run("blackhole", func(t *testing.T) {
		ctx := scenarioContext(t)
		sp := newStalledPath(t, ctx, 2)
		tr := StartTracer(t, ctx, pidArg(sp.clients[0]))
		reps, _ := sp.run(t, ctx, "drop")
		evs := tr.Stop(t)
		checkAonly(t, evs, reps[0], reps[1])
		checkStalled(t, evs, reps[0], unix.ETIMEDOUT)
	})
}

// The on-call view: text mode, one screen. A peer reset must read as the
// reset, the failed sends with their errno spelled out, the diagnosis
// under the failure, and the summary with the kernel's exact totals.
func TestTextOutput(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	startServer(t, ctx, lab.Server, "reset", dst)
	cl := startClient(t, ctx, lab.Client, "-to", dst.String(), "-await-error-before", "1", "-count", "2", "-size", "1000")
	tr := testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, pidArg(cl))
	release(t, cl, "start")
	r := finish(t, ctx, cl)
	out, _ := tr.Stop(t, tracerStop)
	t.Logf("sendtrace text output:\n%s", out)

	pid := fmt.Sprintf("actor/%d", r.PID)
	lines := strings.Split(string(out), "\n")
	find := func(parts ...string) int {
		for i, l := range lines {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				return i
			}
		}
		t.Errorf("no line with %q", parts)
		return -1
	}
	if !strings.HasPrefix(lines[0], "TIME ") {
		t.Errorf("first line is not the column header: %q", lines[0])
	}
	rst := find("receive_reset", pid, dst.String())
	reset := find("send_error", pid, dst.String(), "1000", "ECONNRESET (connection reset by peer)", "syscall=sendto")
	pipe := find("send_error", pid, dst.String(), "1000", "EPIPE (broken pipe)")
	diag := find("=> diagnosis: peer-reset")
	if !(rst < reset && reset < pipe) {
		t.Errorf("lines out of order: reset %d, ECONNRESET %d, EPIPE %d", rst, reset, pipe)
	}
	// The reset concludes the connection, so its diagnosis follows it.
	if diag >= 0 && diag < rst {
		t.Errorf("diagnosis (line %d) comes before the reset it explains (line %d)", diag, rst)
	}
	find("Failures by diagnosis")
	find("| peer-reset ", "ECONNRESET", pid)
	find("Failed sends by errno and process (kernel counted")
	find("Kernel totals by process, kind and errno")
	find("stream complete")
}
