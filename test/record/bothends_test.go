package record_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// vip is the load balancer's virtual address. Lab subnets are numbered
// from 1, so nothing in a lab has an address in 198.18.0.0/24.
var vip = netip.MustParseAddrPort("198.18.0.80:80")

// balanced is client — load balancer — server (netlab's Balance).
func balanced(t *testing.T) (*netlab.Routed, netip.AddrPort) {
	t.Helper()
	r := netlab.NewRouted(t, netlab.LinkOpts{}, netlab.LinkOpts{})
	dst := r.ServerAddr(false, port)
	r.Balance(t, vip, dst)
	return r, dst
}

// bothEnds is one fault recorded at both ends.
type bothEnds struct {
	client, server *actorreport.Report
	clientRec      string
	serverRec      string
	other          string // a recording of the same period that saw neither end
	serverAgain    string // a second recording of the server's end, made at the same time
}

// recordBothEnds runs a client through the balancer against a server in
// mode, recording each end by its actor's pid. fault runs while the
// client is connected and paused; it is given the server's recorder.
// srvArgs are more flags for the server actor.
func recordBothEnds(t *testing.T, ctx context.Context, r *netlab.Routed, dst netip.AddrPort, mode string, fault func(srvRec *recorder), srvArgs ...string) *bothEnds {
	t.Helper()
	dir := keepDir(t)
	b := &bothEnds{clientRec: filepath.Join(dir, "client.jsonl"), serverRec: filepath.Join(dir, "server.jsonl"), other: filepath.Join(dir, "other.jsonl"),
		serverAgain: filepath.Join(dir, "server-again.jsonl")}
	srv := r.Server.StartActor(t, actorBin, append([]string{"server", "-mode", mode, "-listen", dst.String(), "-reset-after", "100ms"}, srvArgs...)...)
	// -pause-before-listen: the server listens once its recorders run.
	lateListen := slices.Contains(srvArgs, "-pause-before-listen")
	first := "listening"
	if lateListen {
		first = "bound"
	}
	if _, err := srv.WaitPhase(ctx, first); err != nil {
		t.Fatal(err)
	}
	cl := r.Client.StartActor(t, actorBin, "client", "-to", vip.String(), "-pause-connected",
		"-until-error", "-count", "0", "-interval", "100ms", "-size", "100", "-timeout", "60s")
	if _, err := cl.WaitPhase(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	srvRec := startRecorder(t, ctx, b.serverRec, []*netlab.Actor{srv})
	srvAgain := startRecorder(t, ctx, b.serverAgain, []*netlab.Actor{srv})
	cliRec := startRecorder(t, ctx, b.clientRec, []*netlab.Actor{cl})
	other := startRecorder(t, ctx, b.other, nil, "--port", "1")
	if lateListen {
		if err := srv.Release("bound"); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.WaitPhase(ctx, "listening"); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Release("start"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.WaitPhase(ctx, "connected"); err != nil {
		t.Fatal(err)
	}
	fault(srvRec)
	if err := cl.Release("connected"); err != nil {
		t.Fatal(err)
	}
	var err error
	if b.client, err = cl.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	cliRec.wait(t, ctx)
	if b.server, err = srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	srvRec.wait(t, ctx)
	srvAgain.wait(t, ctx)
	_ = other.cmd.Process.Signal(syscall.SIGINT)
	other.wait(t, ctx)
	return b
}

// keepDir is where a scenario's recordings go: a new directory under
// $SENDTRACE_KEEP_RECORDINGS when set, so they can be reported by hand
// after the test, else one the test removes.
func keepDir(t *testing.T) string {
	t.Helper()
	keep := os.Getenv("SENDTRACE_KEEP_RECORDINGS")
	if keep == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(keep, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recordings kept in %s", dir)
	return dir
}

type joinedEnd struct {
	Role       string         `json:"role"`
	Host       string         `json:"host"`
	PID        int            `json:"pid"`
	Cookie     uint64         `json:"cookie"`
	Src        netip.AddrPort `json:"src"`
	Dst        netip.AddrPort `json:"dst"`
	Diagnosis  string         `json:"diagnosis"`
	IdleMs     *float64       `json:"idle_ms"`
	IdleAtMost bool           `json:"idle_at_most"`
	LocalDrops *struct {
		In, Out int
		Where   string
	} `json:"local_drops"`
}

type joinReport struct {
	Overlaps []struct {
		Overlaps bool `json:"overlaps"`
	} `json:"overlaps"`
	Offsets []struct {
		OffsetMs float64 `json:"offset_ms"`
		WithinMs float64 `json:"within_ms"`
	} `json:"clock_offsets"`
	Joined []struct {
		Ends        [2]joinedEnd `json:"ends"`
		Failed      bool         `json:"failed"`
		ResetOrigin string       `json:"reset_origin"`
		ResetReason string       `json:"reset_reason"`
		DataReached *bool        `json:"data_reached_peer"`
		DataStopped string       `json:"data_stopped"`
		Diagnosis   string       `json:"diagnosis"`
	} `json:"joined"`
	OneEnd    []joinedEnd       `json:"one_end_only"`
	Ambiguous []json.RawMessage `json:"ambiguous"`
}

// joinOf reports the two recordings and checks that the one connection
// was joined to the sockets the actors themselves name by SO_COOKIE.
func joinOf(t *testing.T, b *bothEnds) *joinReport {
	t.Helper()
	t.Logf("report %s %s:\n%s", b.clientRec, b.serverRec, sendtrace(t, "report", b.clientRec, b.serverRec))
	out := sendtrace(t, "report", "-o", "json", b.clientRec, b.serverRec)
	var j joinReport
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(j.Joined) != 1 {
		t.Fatalf("%d joined connections, want 1:\n%s", len(j.Joined), out)
	}
	c := j.Joined[0]
	cli, srv := c.Ends[0], c.Ends[1]
	var accepted []actorreport.Socket
	for _, s := range b.server.Sockets {
		if s.Remote != "" {
			accepted = append(accepted, s)
		}
	}
	if len(b.client.Sockets) != 1 || len(accepted) != 1 {
		t.Fatalf("client sockets %+v, server's accepted sockets %+v: want one each", b.client.Sockets, accepted)
	}
	if cli.Role != "client" || cli.Cookie != b.client.Sockets[0].Cookie || cli.PID != b.client.PID {
		t.Errorf("client end %+v, want the client actor's socket %+v (pid %d)", cli, b.client.Sockets[0], b.client.PID)
	}
	// The legacy object cannot ask for a cookie: an accepted socket's id
	// is fixed at its handshake, before the server could ask for the
	// kernel's (SO_COOKIE), so only its owner is compared.
	legacy := slices.Contains(recordArgs, "--disable-hook=sk_storage")
	if srv.Role != "server" || (srv.Cookie != accepted[0].Cookie && !legacy) || srv.PID != b.server.PID {
		t.Errorf("server end %+v, want the server actor's socket %+v (pid %d)", srv, accepted[0], b.server.PID)
	}
	for _, a := range []netip.AddrPort{cli.Src, cli.Dst} {
		for _, s := range []netip.AddrPort{srv.Src, srv.Dst} {
			if a.Addr() == s.Addr() || a.Port() == s.Port() {
				t.Errorf("client end %v -> %v and server end %v -> %v share %v / %v: the balancer did not translate", cli.Src, cli.Dst, srv.Src, srv.Dst, a, s)
			}
		}
	}
	// Both recordings ran on this host: one clock. The upper bound (the
	// server entered ESTABLISHED after the client) holds whatever the
	// ACK's transit; the lower one assumes that transit was within the
	// handshake's round trip, which a loaded machine can exceed.
	if len(j.Offsets) != 1 || j.Offsets[0].OffsetMs+j.Offsets[0].WithinMs < -0.001 || math.Abs(j.Offsets[0].OffsetMs) > 20 {
		t.Errorf("clock offsets %+v: the recordings share one clock: the upper bound must be at least 0 and the estimate within 20 ms of it", j.Offsets)
	}
	t.Logf("joined: %s", out)
	return &j
}

func TestBothEndsMiddleboxReset(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.Chromium(t)
	ctx := testutil.Context(t, 2*time.Minute)
	r, dst := balanced(t)
	r.ApplyMiddlebox(t, netlab.Middlebox{Idle: time.Second, Reset: true})
	b := recordBothEnds(t, ctx, r, dst, "discard", func(*recorder) {
		// Let the balancer's conntrack entry expire: this waits for the
		// middlebox, it asserts nothing about speed.
		time.Sleep(2500 * time.Millisecond)
	})
	wantFirstErrno(t, b.client, syscall.ECONNRESET, syscall.EPIPE)
	j := joinOf(t, b)
	c := j.Joined[0]
	if !c.Failed || c.ResetOrigin != "middlebox" {
		t.Errorf("reset origin %q (failed %v), want middlebox", c.ResetOrigin, c.Failed)
	}
	if c.Ends[0].IdleMs == nil || *c.Ends[0].IdleMs < 2000 {
		t.Errorf("client idle %v, want at least the 2.5 s the client waited", c.Ends[0].IdleMs)
	}
	if !strings.Contains(c.Diagnosis, "forgot the flow") || !strings.Contains(c.Diagnosis, "socket was ESTABLISHED then") {
		t.Errorf("diagnosis %q: want a forgotten flow and the server's socket still ESTABLISHED at the reset", c.Diagnosis)
	}
	// The kernels agree: the server's namespace sent no reset at all, and
	// the client's took one in ESTABLISHED.
	if n := nstatValue(t, r.Server, "TcpOutRsts"); n != 0 {
		t.Errorf("the server's namespace sent %d resets, want 0", n)
	}
	if n := nstatValue(t, r.Client, "TcpEstabResets"); n != 1 {
		t.Errorf("the client's namespace counted %d resets of established connections, want 1", n)
	}
	checkBothEndsPage(t, ctx, "middlebox", b, j)

	// The same client recording with one from the same period that saw
	// neither end: listed at one end only, never joined.
	out := sendtrace(t, "report", "-o", "json", b.clientRec, b.other)
	var one joinReport
	if err := json.Unmarshal([]byte(out), &one); err != nil {
		t.Fatal(err)
	}
	if len(one.Joined) != 0 || len(one.OneEnd) != 1 || one.OneEnd[0].Cookie != b.client.Sockets[0].Cookie {
		t.Errorf("client recording with an unrelated one: want no join and the client's socket at one end only:\n%s", out)
	}
	t.Logf("one end only:\n%s", sendtrace(t, "report", b.clientRec, b.other))

	// Two recordings that do not overlap in time join nothing, and say so.
	r2, dst2 := balanced(t)
	later := recordBothEnds(t, ctx, r2, dst2, "reset", func(*recorder) { time.Sleep(300 * time.Millisecond) })
	out = sendtrace(t, "report", "-o", "json", b.clientRec, later.serverRec)
	var apart joinReport
	if err := json.Unmarshal([]byte(out), &apart); err != nil {
		t.Fatal(err)
	}
	if len(apart.Overlaps) != 1 || apart.Overlaps[0].Overlaps || len(apart.Joined) != 0 || len(apart.OneEnd) != 0 {
		t.Errorf("recordings apart in time: want no overlap, no join, nothing at one end:\n%s", out)
	}
	text := sendtrace(t, "report", b.clientRec, later.serverRec)
	if !strings.Contains(text, "do not overlap in time") {
		t.Errorf("text does not say the recordings do not overlap:\n%s", text)
	}
	t.Logf("apart:\n%s", text)
	checkApartPages(t, ctx, b, later.serverRec)
}

func TestBothEndsPeerReset(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.Chromium(t)
	ctx := testutil.Context(t, 2*time.Minute)
	r, dst := balanced(t)
	b := recordBothEnds(t, ctx, r, dst, "reset", func(*recorder) {
		// The server resets 100 ms after accept; the client sends after.
		time.Sleep(500 * time.Millisecond)
	})
	j := joinOf(t, b)
	c := j.Joined[0]
	if !c.Failed || c.ResetOrigin != "peer" {
		t.Errorf("reset origin %q (failed %v), want peer", c.ResetOrigin, c.Failed)
	}
	if c.Ends[0].Diagnosis != "peer-reset" || c.Ends[1].Diagnosis == "peer-reset" {
		t.Errorf("client's diagnosis %q, server's %q: the server sent the reset, only the client received one", c.Ends[0].Diagnosis, c.Ends[1].Diagnosis)
	}
	// close() with SO_LINGER 0 and nothing unread disconnects the socket,
	// which sends its reset for SK_RST_REASON_TCP_STATE (6.10+) and counts
	// it under TCPAbortOnData, in the server's namespace only.
	want := ""
	if kernelAtLeast(t, 6, 10) {
		want = "TCP_STATE"
	}
	if c.ResetReason != want {
		t.Errorf("reset reason %q, want %q", c.ResetReason, want)
	}
	if n := nstatValue(t, r.Server, "TcpExtTCPAbortOnData"); n != 1 {
		t.Errorf("the server's namespace counted %d TCPAbortOnData, want the 1 abortive close", n)
	}
	if n := nstatValue(t, r.Client, "TcpExtTCPAbortOnData"); n != 0 {
		t.Errorf("the client's namespace counted %d TCPAbortOnData, want 0", n)
	}
	if n := nstatValue(t, r.Server, "TcpOutRsts"); n != 1 {
		t.Errorf("the server's namespace sent %d resets, want its 1", n)
	}

	checkBothEndsPage(t, ctx, "peer", b, j)

	// Two recordings of the server's end: the client's socket has two
	// candidates with its ISNs, so nothing is joined, and the output says
	// why.
	out := sendtrace(t, "report", "-o", "json", b.clientRec, b.serverRec, b.serverAgain)
	var amb struct {
		Joined    []json.RawMessage `json:"joined"`
		OneEnd    []json.RawMessage `json:"one_end_only"`
		Ambiguous []struct {
			End        joinedEnd   `json:"end"`
			Candidates []joinedEnd `json:"candidates"`
		} `json:"ambiguous"`
	}
	if err := json.Unmarshal([]byte(out), &amb); err != nil {
		t.Fatal(err)
	}
	if len(amb.Joined) != 0 || len(amb.OneEnd) != 0 || len(amb.Ambiguous) != 1 || len(amb.Ambiguous[0].Candidates) != 2 ||
		amb.Ambiguous[0].End.Cookie != c.Ends[0].Cookie ||
		amb.Ambiguous[0].Candidates[0].Cookie != c.Ends[1].Cookie || amb.Ambiguous[0].Candidates[1].Cookie != c.Ends[1].Cookie {
		t.Errorf("the client's socket with two recordings of the server's: want no join and one ambiguity with the server's socket twice:\n%s", out)
	}
	text := sendtrace(t, "report", b.clientRec, b.serverRec, b.serverAgain)
	if !strings.Contains(text, "Not joined, ambiguous") {
		t.Errorf("text does not say the join was ambiguous:\n%s", text)
	}
	t.Logf("ambiguous:\n%s", text)
}

// kernelAtLeast reports whether the running kernel is at least
// major.minor.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		t.Fatal(err)
	}
	return ma > major || ma == major && mi >= minor
}

func TestBothEndsServerFirewall(t *testing.T) {
	ctx, r, b := serverFirewall(t, "input", "dport")
	j := joinOf(t, b)
	c := j.Joined[0]
	if !c.Failed || c.DataReached == nil || *c.DataReached {
		t.Errorf("data reached the server: %v, want false (its firewall dropped every segment)", c.DataReached)
	}
	// The server's host dropped them, as the rule's own counter says; the
	// counter also takes what arrived after the server's recording ended.
	counted := nftCounter(t, r.Server, "inet fw")
	d := c.Ends[1].LocalDrops
	if d == nil || d.In == 0 || d.In > counted || !strings.Contains(d.Where, "NETFILTER_DROP") {
		t.Errorf("server's local drops %+v, want between 1 and the firewall's %d, for NETFILTER_DROP", d, counted)
	}
	if !strings.Contains(c.DataStopped, "stopped at the server's host") {
		t.Errorf("data stopped %q: want it at the server's host", c.DataStopped)
	}
	if c.Ends[1].Diagnosis != "local-drop" {
		t.Errorf("server's diagnosis %q, want local-drop: its own host dropped the data", c.Ends[1].Diagnosis)
	}
	t.Logf("the firewall counted %d packets; the server's recording has %+v", counted, d)
	if c.ResetOrigin != "" {
		t.Errorf("reset origin %q: nobody sent a reset", c.ResetOrigin)
	}
	checkBothEndsPage(t, ctx, "firewall", b, j)
}

// serverFirewall records both ends of a client whose data meets a rule
// in the server's own firewall, on hook (input or output), that drops
// every segment of the service's port (dport or sport, as seen there),
// until the client times out.
func serverFirewall(t *testing.T, hook, port string) (context.Context, *netlab.Routed, *bothEnds) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.Chromium(t)
	ctx := testutil.Context(t, 2*time.Minute)
	r, dst := balanced(t)
	r.Client.MustSetSysctl("net.ipv4.tcp_retries2", "3")
	b := recordBothEnds(t, ctx, r, dst, "discard", func(*recorder) {
		r.Server.MustNft(fmt.Sprintf(`table inet fw {
	chain c {
		type filter hook %s priority 0; policy accept;
		tcp %s %d counter drop
	}
}`, hook, port, dst.Port()))
	})
	wantFirstErrno(t, b.client, syscall.ETIMEDOUT)
	return ctx, r, b
}

// wantFirstErrno checks the errno the client's first failed send got, as
// the kernel returned it to the client.
func wantFirstErrno(t *testing.T, client *actorreport.Report, want ...syscall.Errno) {
	t.Helper()
	if len(client.Sockets) != 1 {
		t.Fatalf("client sockets %+v, want one", client.Sockets)
	}
	failed := client.Sockets[0].Failed()
	if len(failed) == 0 {
		t.Fatalf("no failed send: %+v", client.Sockets[0])
	}
	for _, w := range want {
		if failed[0].Errno == int(w) {
			return
		}
	}
	t.Errorf("first failed send got %s, want one of %v", failed[0].ErrnoName, want)
}

// TestBothEndsServerDropsItsAcks: the server's own output chain drops
// everything it sends after the handshake. The client's data and its
// retransmits reach the server's TCP, whose acknowledgements never leave
// its host: the data did not stop on the way in.
func TestBothEndsServerDropsItsAcks(t *testing.T) {
	ctx, r, b := serverFirewall(t, "output", "sport")
	j := joinOf(t, b)
	c := j.Joined[0]
	if !c.Failed || c.DataReached == nil || !*c.DataReached || !strings.Contains(c.DataStopped, "the server on") {
		t.Errorf("data reached the server: %v (%s), want true: its TCP received every retransmit", c.DataReached, c.DataStopped)
	}
	// The server's kernel received the retransmits as duplicates and
	// answered each with a D-SACK, which its firewall dropped.
	if n := nstatValue(t, r.Server, "TcpExtTCPDSACKOldSent"); n == 0 {
		t.Errorf("the server's namespace sent no D-SACK for old data: the retransmits did not reach it")
	}
	counted := nftCounter(t, r.Server, "inet fw")
	d := c.Ends[1].LocalDrops
	if d == nil || d.Out == 0 || d.Out > counted || !strings.Contains(c.Diagnosis, "server's own host dropped") {
		t.Errorf("server's local drops %+v (the firewall counted %d), diagnosis %q: want its acknowledgements dropped on its host", d, counted, c.Diagnosis)
	}
	t.Logf("the firewall counted %d packets; the server's recording has %+v", counted, d)
	checkBothEndsPage(t, ctx, "drops-acks", b, j)
}

// nftCounter reads the packets of the first counter in an nftables table
// of the namespace ("inet fw").
func nftCounter(t *testing.T, ns *netlab.NS, table string) int {
	t.Helper()
	out, err := ns.Run("nft", append([]string{"list", "table"}, strings.Fields(table)...)...)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if i := strings.Index(out, "counter packets "); i < 0 {
		t.Fatalf("no counter in\n%s", out)
	} else if _, err := fmt.Sscanf(out[i:], "counter packets %d", &n); err != nil {
		t.Fatal(err)
	}
	return n
}
