package scenario_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// Recording is one finished `sendtrace record`: its events and footer.
type Recording struct {
	Events []events.Event
	Footer *record.Footer
}

// startRecording starts `sendtrace record -o path` with args and returns
// once every probe is attached.
func startRecording(t *testing.T, ctx context.Context, path string, args ...string) *testutil.Sendtrace {
	t.Helper()
	base := append([]string{"record", "-o", path, "--status-interval", "0"}, extraArgs...)
	return testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, append(base, args...)...)
}

// stopRecording stops the recorder as a user would and reads the file.
func stopRecording(t *testing.T, st *testutil.Sendtrace, path string) *Recording {
	t.Helper()
	_, stderr := st.Stop(t, tracerStop)
	t.Logf("sendtrace record stderr:\n%s", stderr)
	rec := &Recording{}
	rec.Events, rec.Footer = testutil.ReadRecording(t, path)
	if rec.Footer == nil {
		t.Fatalf("%s has no footer", path)
	}
	return rec
}

// lossyIperf3 is an iperf3 server behind a router that drops 2% of the
// packets to it at random.
func lossyIperf3(t *testing.T, ctx context.Context) (*netlab.Routed, netip.AddrPort) {
	t.Helper()
	lab := netlab.NewRouted(t, netlab.LinkOpts{}, netlab.LinkOpts{})
	srv := lab.ServerAddr(false, 5201)
	lab.Router.MustNft(fmt.Sprintf(`table inet lossy {
	chain forward_filter {
		type filter hook forward priority 0; policy accept;
		ip daddr %s numgen random mod 100 < 2 drop
	}
}`, srv.Addr()))
	lab.Server.StartIperf3Server(t, ctx, srv)
	return lab, srv
}

// retransSegs sums the kernel totals of retransmits by kind ("untraced"
// included), for pid when it is not 0.
func retransSegs(f *record.Footer, pid uint32) map[string]uint64 {
	out := map[string]uint64{}
	for _, r := range f.Totals {
		if r.Kind == "retransmit" && (pid == 0 || r.PID == pid) {
			out[r.Detail] += r.Segs
		}
	}
	return out
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// TestRetransSegsIperf3: a bulk transfer by iperf3, the real tool, through
// a router that drops 2% of its packets at random, with GSO on (the veth
// default), so one retransmitted skb carries up to 45 segments. The
// kernel's own counters in the client's namespace are the truth:
// TcpRetransSegs must equal sendtrace's segments exactly, and each kind
// must match the counter that counts it where the counters allow.
func TestRetransSegsIperf3(t *testing.T) {
	ctx := scenarioContext(t)
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Fatalf("iperf3 is not installed (scripts/deps.sh installs it): %v", err)
	}
	lab, srv := lossyIperf3(t, ctx)

	path := filepath.Join(t.TempDir(), "iperf3.jsonl")
	// --comm and --dst rather than --pid: a --pid session ends when
	// iperf3 exits, and its data socket may retransmit for a while after
	// that, orphaned; the namespace's counters count those too.
	st := startRecording(t, ctx, path, "--comm", "iperf3", "--dst", srv.Addr().String()+"/32")
	before := lab.Client.MustSNMP()
	cl := lab.Client.Command(ctx, "iperf3", "-c", srv.Addr().String(), "-p", "5201", "-t", "3")
	out, err := cl.CombinedOutput()
	if err != nil {
		t.Fatalf("iperf3 client: %v\n%s", err, out)
	}
	pid := uint32(cl.Process.Pid)
	lab.Client.WaitSocketsGone(t, ctx)
	after := lab.Client.MustSNMP()
	rec := stopRecording(t, st, path)
	d := func(name string) uint64 { return uint64(netlab.Delta(before, after, name)) }

	// Every total and event belongs to the iperf3 client.
	for _, r := range rec.Footer.Totals {
		if r.PID != pid {
			t.Errorf("totals row of pid %d, the iperf3 client is %d: %+v", r.PID, pid, r)
		}
	}
	kinds := retransSegs(rec.Footer, pid)
	var evSegs uint64
	evKinds := map[string]int{}
	var ebusy, otherFailed, maxSegs int
	for _, e := range rec.Events {
		if e.Kind != events.KindRetransmit {
			continue
		}
		evSegs += uint64(e.Segs)
		maxSegs = max(maxSegs, int(e.Segs))
		if e.RetransErr == 0 {
			evKinds[e.RetransKind.String()]++
			continue
		}
		if e.Segs != 0 {
			otherFailed++
		} else if events.RetransErrName(e.RetransErr) == "EBUSY" {
			ebusy++
		}
	}
	mib := d("TcpRetransSegs")
	t.Logf("iperf3 client pid %d: %s", pid, strings.TrimSpace(lastLine(string(out), "sender")))
	t.Logf("%-28s %10s   %s", "sendtrace (kernel totals)", "segments", "client namespace's counters (nstat deltas)")
	t.Logf("%-28s %10d   TcpRetransSegs %d", "all kinds", sum(kinds), mib)
	t.Logf("%-28s %10d   TCPFastRetrans %d", "fast", kinds["fast"], d("TcpExtTCPFastRetrans"))
	t.Logf("%-28s %10d   TCPSlowStartRetrans %d + TCPTimeouts %d", "rto", kinds["rto"], d("TcpExtTCPSlowStartRetrans"), d("TcpExtTCPTimeouts"))
	t.Logf("%-28s %10d   TCPLossProbes %d (new-data probes included)", "tlp", kinds["tlp"], d("TcpExtTCPLossProbes"))
	t.Logf("%-28s %10d   TCPSynRetrans %d", "syn", kinds["syn"], d("TcpExtTCPSynRetrans"))
	t.Logf("%-28s %10d   (counted by the kernel, no tracepoint fired)", "untraced", kinds["untraced"])
	t.Logf("failed before counting (EBUSY, no segments): %d events; TCPSpuriousRtxHostQueues %d", ebusy, d("TcpExtTCPSpuriousRtxHostQueues"))
	t.Logf("events: %d retransmits carrying %d segments, the largest %d", countKind(rec.Events, events.KindRetransmit), evSegs, maxSegs)

	if mib == 0 {
		t.Fatal("lab: no retransmits; the lossy router dropped nothing")
	}
	if maxSegs < 2 {
		t.Errorf("no retransmit carried more than one segment: GSO was off, so the test proves nothing about segments")
	}
	// Exact: the kernel's totals, the per-destination counters from
	// tcp_sock, and the namespace's counter.
	if sum(kinds) != mib {
		t.Errorf("sendtrace counted %d retransmitted segments, TcpRetransSegs grew by %d", sum(kinds), mib)
	}
	var dstSegs uint64
	for _, ds := range rec.Footer.Destinations {
		if ds.Dst == srv.String() {
			dstSegs += ds.RetransSegs
		}
	}
	if dstSegs != mib {
		t.Errorf("per-destination retrans_segs (tcp_sock.total_retrans) %d, TcpRetransSegs grew by %d", dstSegs, mib)
	}
	// The report of the recording counts retransmits in segments: the
	// destination's and the process's rows add up to TcpRetransSegs.
	rep := reportJSON(t, path)
	var repDst, repProc uint64
	for _, r := range rep.Destinations {
		if r.Dst == srv.String() {
			repDst += r.RetransSegs
		}
	}
	for _, r := range rep.Processes {
		if r.PID == pid {
			repProc += r.RetransSegs
		}
	}
	t.Logf("report: destination %s %d retransmitted segments, process %d %d; TcpRetransSegs %d", srv, repDst, pid, repProc, mib)
	if repDst != mib || repProc != mib {
		t.Errorf("report's retransmitted segments: destination %d, process %d; TcpRetransSegs grew by %d", repDst, repProc, mib)
	}
	if evSegs+kinds["untraced"] != sum(kinds) {
		t.Errorf("events carry %d segments and %d were untraced, the totals say %d: events were lost", evSegs, kinds["untraced"], sum(kinds))
	}
	// SYNs: exact (the client has no listener, so no SYN-ACKs).
	if kinds["syn"]+kinds["synack"] != d("TcpExtTCPSynRetrans") {
		t.Errorf("syn segments %d, TCPSynRetrans %d", kinds["syn"]+kinds["synack"], d("TcpExtTCPSynRetrans"))
	}
	// Fast retransmits and RTO recovery: exact when every retransmit
	// fired the tracepoint; what the kernel counted without one is in
	// "untraced", so each kind is bounded by it. The timer's own
	// retransmit is one segment per TCPTimeouts (SYN timeouts aside),
	// the rest of the loss recovery is TCPSlowStartRetrans.
	missFast := int64(d("TcpExtTCPFastRetrans")) - int64(kinds["fast"])
	missRTO := int64(d("TcpExtTCPSlowStartRetrans")+d("TcpExtTCPTimeouts")) - int64(evKinds["syn"]) - int64(kinds["rto"])
	untraced := int64(kinds["untraced"])
	if missFast < 0 || missRTO < 0 || missFast+missRTO > untraced {
		t.Errorf("fast %d vs TCPFastRetrans %d, rto %d vs TCPSlowStartRetrans+TCPTimeouts-syn %d: the differences (%d, %d) are not the %d untraced segments",
			kinds["fast"], d("TcpExtTCPFastRetrans"), kinds["rto"], d("TcpExtTCPSlowStartRetrans")+d("TcpExtTCPTimeouts")-uint64(evKinds["syn"]), missFast, missRTO, untraced)
	}
	// A probe that sends new data counts in TCPLossProbes but
	// retransmits nothing: the counter can only bound the kind.
	if uint64(evKinds["tlp"]) > d("TcpExtTCPLossProbes") || untraced-missFast-missRTO > int64(d("TcpExtTCPLossProbes"))-int64(evKinds["tlp"]) {
		t.Errorf("%d tail loss probes (and %d untraced segments left), TCPLossProbes %d", evKinds["tlp"], untraced-missFast-missRTO, d("TcpExtTCPLossProbes"))
	}
	// An attempt that found its previous copy still queued on this host
	// fails before the kernel counts it: no segments, and the kernel's
	// own count of those.
	if uint64(ebusy) > d("TcpExtTCPSpuriousRtxHostQueues") {
		t.Errorf("%d EBUSY retransmits, TCPSpuriousRtxHostQueues %d", ebusy, d("TcpExtTCPSpuriousRtxHostQueues"))
	}
	if otherFailed > 0 {
		t.Logf("%d failed retransmits were counted by the kernel (they failed in the transmit path)", otherFailed)
	}
}

// reportRows is what the scenarios read of `sendtrace report -o json`.
type reportRows struct {
	Destinations []struct {
		Dst           string `json:"dst"`
		RetransSegs   uint64 `json:"retrans_segs"`
		RetransEvents uint64 `json:"retransmit_events"`
	} `json:"destinations"`
	Processes []struct {
		PID         uint32 `json:"pid"`
		RetransSegs uint64 `json:"retrans_segs"`
	} `json:"processes"`
}

// reportJSON runs `sendtrace report -o json` on a recording.
func reportJSON(t *testing.T, path string) *reportRows {
	t.Helper()
	out, err := exec.Command(sendtraceBin, "report", "-o", "json", path).Output()
	if err != nil {
		t.Fatalf("sendtrace report %s: %v", path, err)
	}
	var r reportRows
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("report of %s: %v", path, err)
	}
	return &r
}

func countKind(evs []events.Event, k events.Kind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func lastLine(s, containing string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], containing) {
			return lines[i]
		}
	}
	return ""
}

// TestRetransSynAck: a listener whose SYN-ACK goes unanswered retransmits
// it through tcp_retransmit_synack, which never passes
// tcp_retransmit_skb. The event belongs to the listener's owner and
// carries the client's address; the server namespace's TCPSynRetrans and
// TcpRetransSegs count it.
func TestRetransSynAck(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	srv := startServer(t, ctx, lab.Server, "discard", dst)
	cl := startClient(t, ctx, lab.Client, "-to", dst.String(), "-count", "3", "-interval", "200ms", "-size", "100")
	tr := StartTracer(t, ctx, pidArg(srv), pidArg(cl))
	// Everything the client sends after its SYN is dropped at the server,
	// until the server has retransmitted its SYN-ACK.
	lab.Server.MustNft(fmt.Sprintf(`table inet lab {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr %s tcp dport %d tcp flags & (syn | ack) == ack drop
	}
}`, lab.ClientAddr(false), port))
	before := lab.Server.MustSNMP()
	release(t, cl, "start")
	err := testutil.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		c, err := lab.Server.SNMP()
		return netlab.Delta(before, c, "TcpExtTCPSynRetrans") >= 1, err
	})
	if err != nil {
		t.Fatalf("the server never retransmitted its SYN-ACK: %v", err)
	}
	if err := lab.Server.Nft("delete table inet lab"); err != nil {
		t.Fatal(err)
	}
	r := finish(t, ctx, cl)
	// The client may be done before the server's handshake is: until no
	// request sock is left, the listener may retransmit its SYN-ACK again.
	err = testutil.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		n, err := synRecv(lab.Server)
		return n == 0, err
	})
	if err != nil {
		t.Fatalf("the server's handshake never completed: %v", err)
	}
	after := lab.Server.MustSNMP()
	evs := tr.Stop(t)

	var synacks []*Event
	var segs uint32
	for _, e := range evs {
		if e.Kind == "retransmit" && e.PID == uint32(srv.PID()) {
			segs += e.Segs
			if e.RetransKind != nil && *e.RetransKind == "synack" {
				synacks = append(synacks, e)
			}
		}
	}
	if want := netlab.Delta(before, after, "TcpExtTCPSynRetrans"); int64(len(synacks)) != want {
		t.Errorf("%d synack retransmits for the server, its TCPSynRetrans grew by %d", len(synacks), want)
	}
	if want := netlab.Delta(before, after, "TcpRetransSegs"); int64(segs) != want {
		t.Errorf("the server's retransmits carry %d segments, its TcpRetransSegs grew by %d", segs, want)
	}
	for _, e := range synacks {
		if !e.OwnerKnown || e.Comm != "actor" || e.Segs != 1 {
			t.Errorf("%s: want the listener's owner and 1 segment", e)
		}
		if e.Dst != r.Sockets[0].Local || e.Src != dst.String() || e.State != "SYN_RECV" {
			t.Errorf("%s: want %s -> %s in SYN_RECV", e, dst, r.Sockets[0].Local)
		}
	}
}

// synRecv counts the namespace's connections still in SYN_RECV (request
// socks included), from /proc/net/tcp{,6}: the kernel matrix's guests
// have no ss.
func synRecv(ns *netlab.NS) (int, error) {
	n := 0
	err := ns.Do(func() error {
		for _, f := range []string{"tcp", "tcp6"} {
			b, err := os.ReadFile("/proc/thread-self/net/" + f)
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(b), "\n")[1:] {
				if fs := strings.Fields(line); len(fs) > 3 && fs[3] == "03" {
					n++
				}
			}
		}
		return nil
	})
	return n, err
}
