package record_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/report"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// nstatValue runs iproute2's nstat in the namespace and returns one
// counter's absolute value (-a: since boot, -s: leave nstat's history
// alone, -z: print it even when 0).
func nstatValue(t *testing.T, ns *netlab.NS, name string) int64 {
	t.Helper()
	out, err := ns.Run("nstat", "-asz", name)
	if err != nil {
		t.Fatalf("nstat in %s (scripts/deps.sh installs iproute2): %v\n%s", ns.Name, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == name {
			v, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("nstat printed no %s:\n%s", name, out)
	return 0
}

// lossyTransfer is one recording of an iperf3 transfer through a router
// that drops pct% of the packets towards the server, with what the test
// read itself in the client's namespace before and after.
type lossyTransfer struct {
	path         string
	clientNetns  uint64
	nstatRetrans int64 // nstat's TcpRetransSegs delta
	procDelta    netlab.Counters
}

func recordLossyTransfer(t *testing.T, ctx context.Context, lab *netlab.Routed, pct int, name string, filters ...string) lossyTransfer {
	t.Helper()
	srv := lab.ServerAddr(false, 5201)
	lab.Router.MustNft(fmt.Sprintf(`flush ruleset
table inet lossy {
	chain forward_filter {
		type filter hook forward priority 0; policy accept;
		ip daddr %s numgen random mod 100 < %d drop
	}
}`, srv.Addr(), pct))
	lab.Server.StartIperf3Server(t, ctx, srv)
	var st unix.Stat_t
	if err := unix.Stat("/run/netns/"+lab.Client.Name, &st); err != nil {
		t.Fatal(err)
	}
	lt := lossyTransfer{path: filepath.Join(t.TempDir(), name), clientNetns: st.Ino}

	rec := startRecorder(t, ctx, lt.path, nil, filters...)
	nBefore := nstatValue(t, lab.Client, "TcpRetransSegs")
	before := lab.Client.MustSNMP()
	cl := lab.Client.Command(ctx, "iperf3", "-c", srv.Addr().String(), "-p", "5201", "-t", "3")
	if out, err := cl.CombinedOutput(); err != nil {
		t.Fatalf("iperf3 client: %v\n%s", err, out)
	}
	lab.Client.WaitSocketsGone(t, ctx)
	after := lab.Client.MustSNMP()
	lt.nstatRetrans = nstatValue(t, lab.Client, "TcpRetransSegs") - nBefore
	if err := rec.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, ctx)
	lt.procDelta = netlab.Counters{}
	for k, v := range after {
		lt.procDelta[k] = v - before[k]
	}
	if lt.nstatRetrans == 0 {
		t.Fatalf("lab: no retransmits at %d%% loss", pct)
	}
	return lt
}

func clientCounters(t *testing.T, rep *report.Report, ino uint64) *report.NetnsCounters {
	t.Helper()
	for i := range rep.NetnsCounters {
		if rep.NetnsCounters[i].Inode == ino {
			return &rep.NetnsCounters[i]
		}
	}
	t.Fatalf("report has no counters of the client's namespace net:[%d]: %+v", ino, rep.NetnsCounters)
	return nil
}

func check(t *testing.T, n *report.NetnsCounters, counter string) report.CounterCheck {
	t.Helper()
	for _, c := range n.Compared {
		if c.Counter == counter {
			return c
		}
	}
	t.Fatalf("no comparison of %s in %+v", counter, n.Compared)
	return report.CounterCheck{}
}

// TestNamespaceCounters records iperf3 transfers through a router that
// drops 1%, then 6%, of the packets at random, and holds the recording's
// namespace counters to what nstat itself says in the client's namespace,
// and to sendtrace's own segments. The first recording is system-wide
// (every process traced, so TcpRetransSegs must equal sendtrace's
// segments); the second is filtered to iperf3, and the report must say
// that only namespace >= traced holds. diff must then see the loss rate
// change in the namespace's own counters.
func TestNamespaceCounters(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Fatalf("iperf3 is not installed (scripts/deps.sh installs it): %v", err)
	}
	ctx := testutil.Context(t, 4*time.Minute)
	lab := netlab.NewRouted(t, netlab.LinkOpts{}, netlab.LinkOpts{})
	low := recordLossyTransfer(t, ctx, lab, 1, "loss1.jsonl")
	high := recordLossyTransfer(t, ctx, lab, 6, "loss6.jsonl.zst", "--comm", "iperf3")

	for i, lt := range []lossyTransfer{low, high} {
		rep := reportJSON(t, lt.path)
		n := clientCounters(t, rep, lt.clientNetns)
		var moved int64
		for _, m := range n.Moved {
			if m.Name == "TcpRetransSegs" {
				moved = m.Delta
			}
		}
		if n.From != "start" || moved != lt.nstatRetrans || moved != lt.procDelta["TcpRetransSegs"] {
			t.Errorf("%s: report's TcpRetransSegs delta %d (from %s), nstat's %d, /proc's %d", lt.path, moved, n.From, lt.nstatRetrans, lt.procDelta["TcpRetransSegs"])
		}
		if len(n.Moved) == 0 || n.Moved[0].Name != "TcpRetransSegs" {
			t.Errorf("%s: TcpRetransSegs is not the first counter that moved: %+v", lt.path, n.Moved)
		}
		for _, m := range n.Moved {
			// TCP is the transfer's alone. IPv6 is not: the kernel sends
			// its own MLD reports and router solicitations after a link
			// comes up, at times of its choosing, which may fall between
			// the recording's readings and not the test's.
			if !strings.HasPrefix(m.Name, "Tcp") {
				continue
			}
			if m.Delta != lt.procDelta[m.Name] {
				t.Errorf("%s: %s moved %d in the recording, %d in the test's own reading", lt.path, m.Name, m.Delta, lt.procDelta[m.Name])
			}
		}
		rs := check(t, n, "TcpRetransSegs")
		t.Logf("%s: TcpRetransSegs %d, sendtrace %d segments (%s): %s %s; %s", lt.path, rs.CounterValue, rs.SendtraceValue, rs.Sendtrace, rs.Expect, rs.Verdict, n.Scope)
		for _, c := range n.Compared {
			if c.Verdict != report.CounterAgree {
				t.Errorf("%s: %s %d against sendtrace's %d: %s (expected %s)", lt.path, c.Counter, c.CounterValue, c.SendtraceValue, c.Verdict, c.Expect)
			}
		}
		switch i {
		case 0:
			if rs.Expect != report.ExpectEqual || rs.SendtraceValue != uint64(lt.nstatRetrans) {
				t.Errorf("unfiltered: sendtrace's %d segments against nstat's %d, expected %q", rs.SendtraceValue, lt.nstatRetrans, rs.Expect)
			}
		case 1:
			for _, c := range n.Compared {
				if c.Expect != report.ExpectAtLeast {
					t.Errorf("filtered by --comm: %s expected %q", c.Counter, c.Expect)
				}
			}
			if !strings.Contains(n.Scope, "comm=iperf3") {
				t.Errorf("filtered by --comm: scope %q", n.Scope)
			}
		}
		text := sendtrace(t, "report", lt.path)
		if !strings.Contains(text, "Namespace counters of net:["+strconv.FormatUint(lt.clientNetns, 10)+"]") ||
			!strings.Contains(text, "TcpRetransSegs") {
			t.Errorf("%s: the text report has no namespace counters of the client:\n%s", lt.path, text)
		}
		if i == 0 {
			page := filepath.Join(t.TempDir(), "report.html")
			sendtrace(t, "report", "--html", page, lt.path)
			b, err := os.ReadFile(page)
			if err != nil {
				t.Fatal(err)
			}
			html := string(b)
			for _, s := range []string{"Namespace counters of net:[" + strconv.FormatUint(lt.clientNetns, 10) + "]",
				`<td class="mono">TcpRetransSegs</td><td class="num">` + strconv.FormatInt(lt.nstatRetrans, 10) + `</td><td class="num">` + strconv.FormatInt(lt.nstatRetrans, 10) + `</td>`,
				`class="ok">agree</td>`} {
				if !strings.Contains(html, s) {
					t.Errorf("the report page lacks %q", s)
				}
			}
		}
		if at := strings.Index(text, "Namespace counters of net:["+strconv.FormatUint(lt.clientNetns, 10)); at >= 0 {
			t.Logf("report %s, client namespace:\n%s", lt.path, text[at:min(len(text), at+2500)])
		}
	}

	var d report.Diff
	if err := json.Unmarshal([]byte(sendtrace(t, "diff", "-o", "json", low.path, high.path)), &d); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, nd := range d.NetnsCounters {
		if nd.Before != "net:["+strconv.FormatUint(low.clientNetns, 10)+"]" {
			continue
		}
		for _, m := range nd.Metrics {
			if m.Name != "TcpRetransSegs" {
				continue
			}
			found = true
			t.Logf("diff: TcpRetransSegs per 1,000 TcpOutSegs %v (n=%d) -> %v (n=%d): %s", deref(m.Before), m.BeforeN, deref(m.After), m.AfterN, m.Verdict)
			if m.Verdict != report.VerdictChanged || deref(m.After) <= deref(m.Before) {
				t.Errorf("1%% against 6%% loss: TcpRetransSegs per 1,000 segments %v -> %v judged %q", deref(m.Before), deref(m.After), m.Verdict)
			}
			wantA := float64(low.procDelta["TcpRetransSegs"]) / (float64(low.procDelta["TcpOutSegs"]) / 1000)
			if b := deref(m.Before); b < wantA-0.01 || b > wantA+0.01 {
				t.Errorf("before: %v per 1,000 segments, the test's own counters give %.3f", b, wantA)
			}
		}
	}
	if !found {
		t.Errorf("diff compares no TcpRetransSegs of the client's namespace: %+v", d.NetnsCounters)
	}
	text := sendtrace(t, "diff", low.path, high.path)
	if i := strings.Index(text, "Namespace counters (nstat's)"); i < 0 {
		t.Errorf("diff text has no namespace counters:\n%s", text)
	} else {
		t.Logf("diff:\n%s", text[i:])
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

// checkPIDCounters checks the namespace counters of a --pid recording of
// black-holed clients that all timed out: read through the clients, which
// had exited when the recording ended; only namespace >= traced is
// claimed, and since the clients were all the namespace had, the
// counters equal sendtrace's.
func checkPIDCounters(t *testing.T, path string, rep *report.Report, clients int) {
	t.Helper()
	if len(rep.NetnsCounters) != 1 {
		t.Fatalf("%s: --pid clients in one namespace, counters of %d namespaces: %+v", path, len(rep.NetnsCounters), rep.NetnsCounters)
	}
	n := rep.NetnsCounters[0]
	if n.From != "start" || n.Note != "" || !strings.Contains(n.Scope, "pid=") {
		t.Errorf("%s: namespace counters from %q, note %q, scope %q", path, n.From, n.Note, n.Scope)
	}
	for _, c := range n.Compared {
		if c.Expect != report.ExpectAtLeast || c.Verdict != report.CounterAgree {
			t.Errorf("%s: %s %d against sendtrace's %d: expected %q, verdict %q", path, c.Counter, c.CounterValue, c.SendtraceValue, c.Expect, c.Verdict)
		}
	}
	rs, to := check(t, &n, "TcpRetransSegs"), check(t, &n, "TcpExtTCPAbortOnTimeout")
	if rs.CounterValue == 0 || rs.CounterValue != int64(rs.SendtraceValue) || to.CounterValue != int64(clients) || to.SendtraceValue != uint64(clients) {
		t.Errorf("%s: TcpRetransSegs %d against %d segments, TCPAbortOnTimeout %d against %d ETIMEDOUT error reports; want equal, %d timeouts",
			path, rs.CounterValue, rs.SendtraceValue, to.CounterValue, to.SendtraceValue, clients)
	}
	t.Logf("%s: %s TcpRetransSegs %d = %d segments, TCPAbortOnTimeout %d = %d", path, n.Netns, rs.CounterValue, rs.SendtraceValue, to.CounterValue, to.SendtraceValue)
}
