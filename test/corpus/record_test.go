//go:build corpusrecord

package corpus_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
	"github.com/sendtrace/sendtrace/test/corpus"
)

const port = 9000

// Environment of the recorder (make diagnose-corpus, make diagnose-eval).
const (
	envOut   = "SENDTRACE_CORPUS_OUT"   // directory the recordings and labels go to
	envAgain = "SENDTRACE_CORPUS_AGAIN" // directory a sample of cases is recorded to a second time
	envCases = "SENDTRACE_CORPUS_CASES" // only the cases whose name matches this regexp
)

// againEvery picks the sample recorded twice: every third case.
const againEvery = 3

// TestRecordCorpus builds every case of the corpus live in network
// namespaces, records it with `sendtrace record` as a user would (only
// the server's address, so files stay small), and writes the recording
// and its label to $SENDTRACE_CORPUS_OUT. It is the recorder behind make
// diagnose-corpus and make diagnose-eval, not a check: without the
// variable it does nothing.
func TestRecordCorpus(t *testing.T) {
	out := os.Getenv(envOut)
	if out == "" {
		t.Fatalf("the corpus recorder writes to $%s: run make diagnose-corpus or make diagnose-eval", envOut)
	}
	testutil.RequireRoot(t)
	var only *regexp.Regexp
	if s := os.Getenv(envCases); s != "" {
		only = regexp.MustCompile(s)
	}
	bins := t.TempDir()
	var b binaries
	if err := netlab.BuildBinaries(bins, &b.sendtrace, &b.actor); err != nil {
		t.Fatal(err)
	}
	var err error
	if b.peer, err = testutil.Build(bins, "SENDTRACE_PEER", "github.com/sendtrace/sendtrace/test/diagnose/peer"); err != nil {
		t.Fatal(err)
	}
	again := os.Getenv(envAgain)
	for i, c := range corpus.Cases() {
		if only != nil && !only.MatchString(c.Name) {
			continue
		}
		t.Run(c.Name, func(t *testing.T) { recordCase(t, b, c, out) })
		if again != "" && i%againEvery == 0 {
			t.Run(c.Name+"/again", func(t *testing.T) { recordCase(t, b, c, again) })
		}
	}
}

type binaries struct{ sendtrace, actor, peer string }

// run is one case being built.
type run struct {
	t   *testing.T
	ctx context.Context
	c   corpus.Case
	b   binaries
	lab *netlab.Routed
	dst netip.AddrPort
	tmp string
}

func recordCase(t *testing.T, b binaries, c corpus.Case, out string) {
	ctx := testutil.Context(t, 2*time.Minute)
	r := &run{t: t, ctx: ctx, c: c, b: b, lab: netlab.NewRouted(t, netlab.LinkOpts{}, netlab.LinkOpts{}), tmp: t.TempDir()}
	r.dst = r.lab.ServerAddr(c.IPv6, port)
	// Short kernel timeouts, so that a case ends in seconds.
	for k, v := range map[string]string{
		"net.ipv4.tcp_retries2":         "3",
		"net.ipv4.tcp_syn_retries":      "2",
		"net.ipv4.tcp_keepalive_time":   "1",
		"net.ipv4.tcp_keepalive_intvl":  "1",
		"net.ipv4.tcp_keepalive_probes": "2",
		// A closed socket's FIN into a black hole, and a FIN_WAIT2 the
		// peer never ends, outlive the client: not for long.
		"net.ipv4.tcp_orphan_retries": "1",
		"net.ipv4.tcp_fin_timeout":    "2",
	} {
		r.lab.Client.MustSetSysctl(k, v)
	}
	switch c.Cause {
	case corpus.MiddleboxIdle, corpus.MiddleboxIdleDrp:
		r.lab.ApplyMiddlebox(t, netlab.Middlebox{Idle: 2 * time.Second, Reset: c.Cause == corpus.MiddleboxIdle})
	case corpus.PMTU:
		r.lab.ApplyPMTUBlackHole(t, 1280)
	case corpus.Healthy:
		if c.Where == "middlebox" {
			r.lab.ApplyMiddlebox(t, netlab.Middlebox{Idle: 2 * time.Second, Reset: true})
		}
	}
	client := r.prepare()

	path := corpus.Recording(out, c.Name)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	tr := testutil.StartSendtrace(t, ctx, b.sendtrace, 60*time.Second, "record", "-o", path, "--force",
		"--status-interval", "0", "--dst", r.dst.Addr().String())
	got := client()
	t.Logf("client: %s", got)
	// Orphaned sockets go on retransmitting after their process exits;
	// the recording ends once they are gone. One left with data for a
	// reader that never reads probes its zero window for minutes, and
	// nothing it does is the case's.
	if c.Cause != corpus.ZeroWindow {
		r.lab.Client.WaitSocketsGone(t, ctx)
	}
	tr.Stop(t, 30*time.Second)

	ds, err := corpus.Diagnose(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		t.Logf("diagnosis: %s", d.String())
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	l := corpus.Label{Case: c, Kernel: strings.TrimSpace(string(kernel)), Answer: corpus.Answer(ds)}
	if err := corpus.WriteLabel(out, &l); err != nil {
		t.Fatal(err)
	}
	v := corpus.Score(c, ds)
	t.Logf("%s: %v %s", c.Name, l.Answer, v.Class)
}

// ip is the nftables family keyword of the case's addresses.
func (r *run) ip() string {
	if r.c.IPv6 {
		return "ip6"
	}
	return "ip"
}

// fault returns what makes the case's fault when applied, nil when the
// lab's setup already is the fault (a middlebox, a closed port, a server
// that resets or never reads).
func (r *run) fault() func() {
	ip, cl, srv := r.ip(), r.lab.ClientAddr(r.c.IPv6), r.dst.Addr()
	var ns *netlab.NS
	var rule string
	switch r.c.Cause {
	case corpus.BlackHoleRemote, corpus.BlackHolePath, corpus.LocalDrop, corpus.KeepaliveExpiry, corpus.UserTimeout:
		switch r.c.Where {
		case "peer":
			ns, rule = r.lab.Server, fmt.Sprintf("type filter hook input priority 0; policy accept;\n%s saddr %s drop", ip, cl)
		case "path":
			ns, rule = r.lab.Router, fmt.Sprintf("type filter hook forward priority 0; policy accept;\n%s saddr %s %s daddr %s drop", ip, cl, ip, srv)
		case "local":
			ns, rule = r.lab.Client, fmt.Sprintf("type filter hook output priority 0; policy accept;\n%s daddr %s drop", ip, srv)
		}
	case corpus.ICMPUnreachable:
		ns, rule = r.lab.Router, fmt.Sprintf("type filter hook forward priority 0; policy accept;\n%s daddr %s reject with icmpx type host-unreachable", ip, srv)
	default:
		return nil
	}
	return func() {
		ns.MustNft(fmt.Sprintf("table inet corpus {\n\tchain c {\n\t\t%s\n\t}\n}\n", rule))
		r.t.Logf("fault applied in %s", ns.Name)
	}
}

// faultDelay is when a mid-stream or idle fault comes, after the client
// starts.
func (r *run) faultDelay() time.Duration {
	switch {
	case r.c.Client == "curl" && r.c.Behaviour == "rate-upload":
		return 3500 * time.Millisecond
	case r.c.Cause == corpus.BlackHoleRemote && r.c.Client == "actor":
		return 500 * time.Millisecond
	case r.c.Cause == corpus.UserTimeout || r.c.Client == "iperf3" || r.c.Behaviour == "udp":
		return time.Second
	}
	return 1500 * time.Millisecond
}

// prepare starts the case's server and returns what runs its client,
// applying the fault, and returns what the client said.
func (r *run) prepare() func() string {
	c := r.c
	fault := r.fault()
	if c.Client == "actor" {
		return r.actor(fault)
	}
	if c.Client == "node" && c.Behaviour == "idle" {
		h := netlab.StartNodeHTTP(r.t, r.ctx, r.tmp, r.lab.Server, r.dst, r.lab.Client, r.dst, "3500")
		return func() string { h.Release(r.t); return string(h.WaitClient(r.t, r.ctx)) }
	}
	r.server()
	args := r.clientArgs()
	return func() string {
		if fault != nil && c.When == "handshake" {
			fault()
			fault = nil
		}
		if c.Client == "curl" && c.Behaviour == "rate-upload" {
			return r.curlUploads(fault)
		}
		done := make(chan string, 1)
		cmd := r.lab.Client.Command(r.ctx, args[0], args[1:]...)
		go func() {
			b, err := cmd.CombinedOutput()
			done <- fmt.Sprintf("%s (%v)", strings.TrimSpace(string(b)), err)
		}()
		if fault != nil {
			select {
			case s := <-done:
				r.t.Fatalf("lab: the client ended before the fault: %s", s)
			case <-time.After(r.faultDelay()):
				fault()
			}
		}
		return <-done
	}
}

// server starts what the client talks to.
func (r *run) server() {
	c, dst := r.c, r.dst.String()
	switch {
	case c.Cause == corpus.Refused || c.Cause == corpus.RetryStorm:
	case c.Client == "iperf3":
		r.lab.Server.StartIperf3Server(r.t, r.ctx, r.dst)
	case c.Client == "peer" || c.Cause == corpus.KeepaliveExpiry:
		args := []string{"server", "-listen", dst}
		if c.Cause == corpus.PMTU {
			args = append(args, "-tick", "100ms")
		}
		r.peerServer(args...)
	case c.Behaviour == "udp":
		r.actorServer("-mode", "udp")
	case c.Cause == corpus.ZeroWindow:
		r.actorServer("-mode", "sink", "-rcvbuf", "65536")
	case c.Cause == corpus.UserTimeout:
		r.actorServer("-mode", "discard")
	default:
		r.peerServer("upload", "-listen", dst)
	}
}

func (r *run) peerServer(args ...string) {
	ready := filepath.Join(r.t.TempDir(), "ready")
	cmd := r.lab.Server.Command(context.Background(), r.b.peer, args...)
	cmd.Env = append(os.Environ(), "PEER_READY="+ready)
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	r.t.Cleanup(func() { _ = cmd.Process.Kill(); <-waited })
	if err := testutil.WaitFile(r.ctx, ready); err != nil {
		r.t.Fatalf("peer server not listening: %v", err)
	}
}

func (r *run) actorServer(args ...string) {
	srv := r.lab.Server.StartActor(r.t, r.b.actor, append([]string{"server", "-listen", r.dst.String()}, args...)...)
	if _, err := srv.WaitPhase(r.ctx, "listening"); err != nil {
		r.t.Fatal(err)
	}
}

// clientArgs is the command line of a client that is not the actor.
func (r *run) clientArgs() []string {
	c, dst := r.c, r.dst.String()
	url := "http://" + dst
	host, p := r.dst.Addr().String(), strconv.Itoa(port)
	switch c.Client {
	case "curl":
		curl := []string{"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{errormsg}", "-m", "20"}
		switch {
		case c.Cause == corpus.PeerReset && c.Behaviour == "download":
			return append(curl, url+"/reset?after=262144")
		case c.Cause == corpus.PeerReset:
			return append(curl, url+"/reset")
		case c.Cause == corpus.PMTU:
			return append(curl, "-T", r.file(1<<20), url+"/upload")
		case c.Cause == corpus.AppTimeout && c.Behaviour == "download":
			return append(curl, "-m", "1", url+"/bytes?n=10000000&rate=100000")
		case c.Cause == corpus.AppTimeout:
			return append(curl, "-m", "1", url+"/sleep?d=3s")
		case c.Cause == corpus.Healthy:
			return append(curl, url+"/bytes?n=20000000")
		}
		return append(curl, url+"/")
	case "python":
		mode, arg := "connect", ""
		switch c.Cause {
		case corpus.PeerReset:
			mode = "get"
		case corpus.AppTimeout:
			mode, arg = "get", "1"
		case corpus.MiddleboxIdle:
			mode = "idle"
		case corpus.ZeroWindow:
			mode = "nbsend"
		case corpus.RetryStorm:
			mode = "storm"
		case corpus.KeepaliveExpiry:
			mode = "keepalive"
		case corpus.UserTimeout:
			mode = "usertimeout"
		}
		switch c.Behaviour {
		case "rate-upload":
			mode = "put"
		case "udp":
			mode = "udp"
		}
		return []string{"python3", "-c", pyClient, mode, host, p, arg}
	case "node":
		mode := map[string]string{corpus.Refused: "refused", corpus.RetryStorm: "storm", corpus.ZeroWindow: "sink"}[c.Cause]
		return []string{"node", "-e", nodeClient, mode, host, p}
	case "go":
		g := []string{r.b.peer, "http", "-url", url + "/"}
		switch c.Cause {
		case corpus.PeerReset:
			g[3] = url + "/reset"
		case corpus.MiddleboxIdle:
			g = append(g, "-count", "2", "-idle", "3500ms")
		case corpus.BlackHoleRemote:
			g = append(g, "-put", "20000000", "-rate", "200000")
		case corpus.PMTU:
			g = append(g, "-put", "1000000")
		case corpus.Healthy:
			g[3] = url + "/upload"
			g = append(g, "-put", "20000000")
		case corpus.AppTimeout:
			g[3] = url + "/sleep?d=3s"
			g = append(g, "-timeout", "1s")
		}
		return g
	case "iperf3":
		secs := map[string]string{corpus.BlackHolePath: "15", corpus.PMTU: "15", corpus.PeerReset: "2"}[c.Cause]
		return []string{"iperf3", "-c", host, "-p", p, "-t", secs}
	case "peer":
		args := []string{r.b.peer, "client", "-to", dst}
		switch c.Cause {
		case corpus.MiddleboxIdle:
			return append(args, "-mode", "idle", "-idle", "3500ms", "-count", "10")
		case corpus.MiddleboxIdleDrp:
			return append(args, "-mode", "idle", "-idle", "3500ms", "-count", "60")
		case corpus.PMTU:
			return append(args, "-mode", "pmtu", "-count", "80")
		case corpus.RetryStorm:
			return append(args, "-mode", "storm", "-count", "20", "-interval", "20ms")
		case corpus.KeepaliveExpiry:
			return append(args, "-mode", "idle", "-idle", "8s", "-keepalive", "1s", "-count", "3")
		case corpus.Healthy:
			return append(args, "-mode", "idle", "-idle", "3500ms", "-count", "5", "-keepalive", "1s")
		}
	}
	r.t.Fatalf("no client for %s", c.Name)
	return nil
}

// file returns a file of n bytes to upload.
func (r *run) file(n int64) string {
	p := filepath.Join(r.tmp, "body")
	f, err := os.Create(p)
	if err == nil {
		err = f.Truncate(n)
		f.Close()
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// curlUploads is six curl uploads at 200 KB/s, 0.5 s apart, with the
// fault at 3.5 s.
func (r *run) curlUploads(fault func()) string {
	body := r.file(20 << 20)
	const uploads = 6
	results := make(chan string, uploads)
	start := time.Now()
	for i := range uploads {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 500 * time.Millisecond)))
		cmd := r.lab.Client.Command(r.ctx, "curl", "-s", "-m", "40", "--limit-rate", "200K", "-T", body,
			"-o", "/dev/null", "-w", "%{http_code} %{errormsg}", fmt.Sprintf("http://%s/upload%d", r.dst, i))
		go func() {
			b, err := cmd.CombinedOutput()
			results <- fmt.Sprintf("%s (%v)", b, err)
		}()
	}
	time.Sleep(time.Until(start.Add(r.faultDelay())))
	fault()
	var got []string
	for range uploads {
		got = append(got, <-results)
	}
	return strings.Join(got, "; ")
}

// actor runs the lab's own client: TCP sends of 64 KiB (16 KiB into a
// receiver that never reads), or UDP datagrams.
func (r *run) actor(fault func()) func() string {
	c := r.c
	srv := []string{"-mode", "discard"}
	cl := []string{"client", "-to", r.dst.String(), "-until-error", "-count", "0"}
	switch {
	case c.Behaviour == "udp":
		srv = []string{"-mode", "udp"}
		cl = append(cl, "-proto", "udp", "-interval", "100ms", "-size", "512", "-timeout", "20s")
		if c.Cause == corpus.ICMPUnreachable {
			// Host unreachable is no hard error for UDP: without
			// IP_RECVERR the kernel keeps it from the sender.
			cl = append(cl, "-recverr")
		}
	case c.Cause == corpus.ZeroWindow:
		// It goes on after EAGAIN: the first comes while the reader's
		// window is still open; it closes once the reader's buffer is full.
		srv = []string{"-mode", "sink", "-rcvbuf", "65536"}
		cl = []string{"client", "-to", r.dst.String(), "-count", "150", "-interval", "20ms", "-nonblock", "-sndbuf", "65536", "-size", "16384"}
	case c.Cause == corpus.PeerReset:
		srv = []string{"-mode", "reset"}
		cl = append(cl, "-interval", "100ms", "-size", "65536")
	case c.Cause == corpus.LocalDrop || c.When == "handshake":
		cl = append(cl, "-pause-connected", "-interval", "100ms", "-size", "100")
	default:
		cl = append(cl, "-pause-connected", "-interval", "100ms", "-size", "65536")
	}
	if c.Cause != corpus.Refused {
		r.actorServer(srv...)
	}
	a := r.lab.Client.StartActor(r.t, r.b.actor, cl...)
	if _, err := a.WaitPhase(r.ctx, "start"); err != nil {
		r.t.Fatal(err)
	}
	return func() string {
		if err := a.Release("start"); err != nil {
			r.t.Fatal(err)
		}
		if slices.Contains(cl, "-pause-connected") {
			if _, err := a.WaitPhase(r.ctx, "connected"); err != nil {
				r.t.Fatal(err)
			}
			if c.Cause == corpus.LocalDrop || c.When == "handshake" {
				fault()
				fault = nil
			}
			if err := a.Release("connected"); err != nil {
				r.t.Fatal(err)
			}
		}
		if fault != nil {
			time.Sleep(r.faultDelay())
			fault()
		}
		rep, err := a.Wait(r.ctx)
		if err != nil {
			return err.Error()
		}
		var errs []string
		for _, s := range rep.Sockets {
			for _, f := range s.Failed() {
				errs = append(errs, f.ErrnoName)
			}
		}
		return fmt.Sprintf("actor: %d sockets, errnos %v", len(rep.Sockets), errs)
	}
}
