package fleet_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestBothAgentsMiddleboxReset: two network namespaces act as two hosts,
// each with its own serve tracing its own workloads (a cgroup each), the
// flight recorder on, behind TLS and basic auth. Between them a DNAT+SNAT
// balancer forgets an idle flow and resets the client. Nobody recorded
// anything on purpose: afterwards `report URL_A URL_B --since 2m`, run
// from the balancer's namespace, joins the two ends through the NAT and
// says a middlebox reset the connection, the same answer as the join of
// the two windows written to files with record --from-flight. A wrong
// password, no password, a window before the history, http:// for a TLS
// agent and an untrusted certificate are each one line and a non-zero
// exit.
func TestBothAgentsMiddleboxReset(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 6*time.Minute)
	r := netlab.NewRouted(t, netlab.LinkOpts{}, netlab.LinkOpts{})
	vip := netip.MustParseAddrPort("198.18.0.80:80")
	dst := r.ServerAddr(false, udpPort)
	r.Balance(t, vip, dst)
	r.ApplyMiddlebox(t, netlab.Middlebox{Idle: time.Second, Reset: true})

	p := newPKI(t, r.ClientAddr(false), dst.Addr())
	password := randomHex(t, 16)
	webYML := filepath.Join(p.dir, "web.yml")
	writeFileAtomic(t, webYML, fmt.Sprintf("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  sre: %s\n", bcryptHash(t, password)))
	auth := filepath.Join(p.dir, "sre.auth")
	wrong := filepath.Join(p.dir, "wrong.auth")
	for f, line := range map[string]string{auth: "sre:" + password, wrong: "sre:not-" + password} {
		if err := os.WriteFile(f, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	cgA, idA := makeCgroup(t, "sendtrace-test/agents-"+r.ID+"/host-a")
	cgB, idB := makeCgroup(t, "sendtrace-test/agents-"+r.ID+"/host-b")
	// The server listens before its agent starts, which finds the
	// listener's owner when it starts: under a process filter
	// (--cgroup), a listener opened later has no owner, nor have the
	// connections it accepts, and their events do not pass.
	srv := r.Server.StartActorInCgroup(t, cgB, actorBin, "server", "-mode", "discard", "-listen", dst.String(), "-reset-after", "100ms", "-timeout", "6m")
	if _, err := srv.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	hostA := startAgent(t, ctx, r.Client, r.ClientAddr(false), idA, webYML)
	hostB := startAgent(t, ctx, r.Server, dst.Addr(), idB, webYML)
	agentA, agentB := hostA.url, hostB.url
	// A flight recording starts with the first event it keeps. Each
	// host's workload makes one now (a refused connection) and the fault
	// comes two minutes later, so that --since 2m just after the fault is
	// within both histories and holds the whole connection.
	refused := netip.AddrPortFrom(dst.Addr(), 1)
	refuseConnect(t, ctx, r.Client, cgA, refused)
	refuseConnect(t, ctx, r.Server, cgB, refused)
	waitSegment(t, ctx, hostA.flightDir)
	waitSegment(t, ctx, hostB.flightDir)
	window, err := time.ParseDuration(since)
	if err != nil {
		t.Fatal(err)
	}
	historyOld := time.Now().Add(window + time.Second)

	// The SRE's machine: the balancer's namespace reaches both agents.
	report := func(args ...string) (string, string, error) {
		cmd := r.Router.Command(ctx, sendtraceBin, append([]string{"report"}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), strings.TrimSpace(stderr.String()), err
	}
	trusted := []string{"--auth-file", auth, "--ca-file", p.caFile}
	plainA := "http://" + strings.TrimPrefix(agentA, "https://")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{agentA, agentB, "--since", since, "--auth-file", wrong, "--ca-file", p.caFile},
			"sendtrace: agent " + agentA + " refused the user and password of --auth-file " + wrong + " (401 Unauthorized)"},
		{[]string{agentA, agentB, "--since", since, "--ca-file", p.caFile}, "sendtrace: agent " + agentA + " asks for a user and password: give --auth-file FILE"},
		{[]string{agentA, agentB, "--since", since, "--auth-file", auth}, "sendtrace: agent " + agentA + ": its certificate is not trusted"},
		{[]string{plainA, "--since", since}, "sendtrace: agent " + plainA + " speaks TLS: give its URL with https://"},
		{append([]string{agentB, "--since", "1h"}, trusted...), "starts before the flight recorder's history: history starts at "},
		{append([]string{"https://" + dst.Addr().String() + ":99999", "--since", since}, trusted...), "invalid agent URL"},
	} {
		stdout, stderr, err := report(c.args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 || strings.Contains(stderr, "\n") || !strings.Contains(stderr, c.want) {
			t.Errorf("report %q: %v\nstderr: %s\nstdout: %s\nwant one line containing %q and a non-zero exit", c.args, err, stderr, stdout, c.want)
		}
	}

	if wait := time.Until(historyOld); wait > 0 {
		t.Logf("waiting %s until both agents hold %s of history", wait.Round(time.Second), since)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}

	cl := r.Client.StartActorInCgroup(t, cgA, actorBin, "client", "-to", vip.String(), "-pause-connected",
		"-until-error", "-count", "0", "-interval", "100ms", "-size", "100", "-timeout", "60s")
	for _, phase := range []string{"start", "connected"} {
		if _, err := cl.WaitPhase(ctx, phase); err != nil {
			t.Fatal(err)
		}
		if phase == "connected" {
			// Let the balancer's conntrack entry expire: this waits for
			// the middlebox, it asserts nothing about speed.
			time.Sleep(2500 * time.Millisecond)
		}
		if err := cl.Release(phase); err != nil {
			t.Fatal(err)
		}
	}
	client, err := cl.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	server, err := srv.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(client.Sockets) != 1 || len(client.Sockets[0].Failed()) == 0 {
		t.Fatalf("client sockets %+v: want one, whose send failed", client.Sockets)
	}
	if e := client.Sockets[0].Failed()[0]; e.Errno != int(syscall.ECONNRESET) && e.Errno != int(syscall.EPIPE) {
		t.Fatalf("the client's first failed send got %s, want ECONNRESET or EPIPE: the balancer did not reset it", e.ErrnoName)
	}

	// The agents write what they read within a second (serve's event
	// batch, the recorder's flush): wait for the windows to hold the
	// connection to its end, when the stopped server's socket took a
	// reset of its own and each end has its diagnosis.
	var fromAgents *agentJoin
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	err = testutil.Poll(wctx, time.Second, func() (bool, error) {
		out, stderr, err := report(append([]string{agentA, agentB, "--since", since, "-o", "json"}, trusted...)...)
		if err != nil {
			return false, fmt.Errorf("report -o json: %v: %s", err, stderr)
		}
		last, fromAgents = out, parseJoin(t, out)
		return len(fromAgents.Joined) == 1 && fromAgents.Joined[0].Ends[0].Diagnosis != "" && fromAgents.Joined[0].Ends[1].Diagnosis != "", nil
	})
	if err != nil {
		for _, h := range []*agent{hostA, hostB} {
			ls, _ := exec.Command("ls", "-l", "--time-style=full-iso", h.flightDir).CombinedOutput()
			t.Logf("%s:\n%s\nserve's stderr:\n%s", h.flightDir, ls, h.st.Stderr())
		}
		t.Fatalf("%v\n%s", err, last)
	}
	text, stderr, err := report(append([]string{agentA, agentB, "--since", since}, trusted...)...)
	if err != nil {
		t.Fatalf("report %s %s --since %s: %v\n%s", agentA, agentB, since, err, stderr)
	}
	t.Logf("report %s %s --since %s (over TLS, with basic auth):\n%s", agentA, agentB, since, text)

	// The same windows, as files.
	dir := t.TempDir()
	var files []string
	for i, h := range []*agent{hostA, hostB} {
		f := filepath.Join(dir, fmt.Sprintf("host-%c.jsonl.zst", 'a'+i))
		if b, err := exec.CommandContext(ctx, sendtraceBin, "record", "--from-flight", h.flightDir, "--since", since, "-o", f).CombinedOutput(); err != nil {
			t.Fatalf("record --from-flight %s: %v\n%s", h.flightDir, err, b)
		}
		files = append(files, f)
	}
	fout, stderr, err := report(append(files, "-o", "json")...)
	if err != nil {
		t.Fatalf("report %s: %v\n%s", strings.Join(files, " "), err, stderr)
	}
	fromFiles := parseJoin(t, fout)

	for name, j := range map[string]*agentJoin{"agents": fromAgents, "files": fromFiles} {
		if len(j.Joined) != 1 {
			t.Fatalf("%s: %d joined connections, want 1", name, len(j.Joined))
		}
		c := j.Joined[0]
		cli, srvEnd := c.Ends[0], c.Ends[1]
		if !c.Failed || c.ResetOrigin != "middlebox" {
			t.Errorf("%s: reset origin %q (failed %v), want middlebox", name, c.ResetOrigin, c.Failed)
		}
		if cli.Role != "client" || cli.PID != client.PID || cli.Cookie != client.Sockets[0].Cookie {
			t.Errorf("%s: client end %+v, want the client actor's socket (pid %d, cookie %d)", name, cli, client.PID, client.Sockets[0].Cookie)
		}
		if srvEnd.Role != "server" || srvEnd.PID != server.PID || !acceptedBy(server, srvEnd.Cookie) {
			t.Errorf("%s: server end %+v, want a socket the server actor (pid %d) accepted", name, srvEnd, server.PID)
		}
		if cli.Dst.Addr() == srvEnd.Src.Addr() || cli.Src.Addr() == srvEnd.Dst.Addr() {
			t.Errorf("%s: client end %v -> %v and server end %v -> %v: the balancer did not translate", name, cli.Src, cli.Dst, srvEnd.Src, srvEnd.Dst)
		}
		if len(j.Offsets) != 1 {
			t.Errorf("%s: clock offsets %+v, want one estimate between the two ends", name, j.Offsets)
		}
	}
	a, f := fromAgents.Joined[0], fromFiles.Joined[0]
	if a.ResetOrigin != f.ResetOrigin || a.ResetReason != f.ResetReason || a.Ends[0].Cookie != f.Ends[0].Cookie || a.Ends[1].Cookie != f.Ends[1].Cookie ||
		a.Ends[0].Diagnosis != f.Ends[0].Diagnosis || a.Ends[1].Diagnosis != f.Ends[1].Diagnosis {
		t.Errorf("the agents' join and the files' differ:\nagents: %+v\nfiles:  %+v", a, f)
	}
	if !strings.Contains(text, "middlebox") || !strings.Contains(text, agentA) || !strings.Contains(text, agentB) || strings.Contains(text, "sendtrace-agent-") {
		t.Errorf("the text report does not name the middlebox, or names the agents by temporary files:\n%s", text)
	}
	for _, h := range []*agent{hostA, hostB} {
		_, stderr := h.st.Stop(t, tracerStop)
		if !strings.Contains(string(stderr), "sendtrace: served the recording of ") {
			t.Errorf("serve did not log the windows it served:\n%s", stderr)
		}
	}
}

// since is how far back the report looks, as one would a couple of
// minutes after an incident.
const since = "2m"

// agent is one host's serve.
type agent struct {
	url       string
	flightDir string
	st        *testutil.Sendtrace
}

// startAgent starts serve in ns, as the agent of the host ns stands for:
// it traces the workloads of one cgroup, keeps its flight recording and
// serves windows of it over TLS with basic auth on listen:9464.
func startAgent(t *testing.T, ctx context.Context, ns *netlab.NS, listen netip.Addr, cgroup uint64, webYML string) *agent {
	t.Helper()
	a := &agent{flightDir: filepath.Join(t.TempDir(), "flight")}
	a.st = testutil.StartSendtrace(t, ctx, inNamespace(t, ns, sendtraceBin), tracerReady, "serve",
		"--listen", netip.AddrPortFrom(listen, 9464).String(), "--events=false", "--cgroup", strconv.FormatUint(cgroup, 10),
		"--flight-dir", a.flightDir, "--serve-recordings", "--web.config.file", webYML)
	a.url = "https://" + readyListen(t, a.st.ReadyFile)
	return a
}

// inNamespace is a script that runs bin inside ns (ip netns exec, which
// execs in place: the pid is bin's).
func inNamespace(t *testing.T, ns *netlab.NS, bin string) string {
	t.Helper()
	return script(t, fmt.Sprintf("exec ip netns exec %s %s \"$@\"", ns.Name, bin))
}

func script(t *testing.T, line string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "run-*.sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("#!/bin/sh\n" + line + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// agentJoin is what these tests read of report -o json's join.
type agentJoin struct {
	Offsets []struct {
		OffsetMs float64 `json:"offset_ms"`
		WithinMs float64 `json:"within_ms"`
	} `json:"clock_offsets"`
	Joined []struct {
		Ends [2]struct {
			Role      string         `json:"role"`
			Recording string         `json:"recording"`
			PID       int            `json:"pid"`
			Cookie    uint64         `json:"cookie"`
			Src       netip.AddrPort `json:"src"`
			Dst       netip.AddrPort `json:"dst"`
			Diagnosis string         `json:"diagnosis"`
		} `json:"ends"`
		Failed      bool   `json:"failed"`
		ResetOrigin string `json:"reset_origin"`
		ResetReason string `json:"reset_reason"`
	} `json:"joined"`
}

func parseJoin(t *testing.T, out string) *agentJoin {
	t.Helper()
	var j agentJoin
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return &j
}

// acceptedBy says whether the server actor accepted the socket cookie.
func acceptedBy(server *actorreport.Report, cookie uint64) bool {
	for _, s := range server.Sockets {
		if s.Remote != "" && s.Cookie == cookie {
			return true
		}
	}
	return false
}

// refuseConnect has a process of the workload in cgroup dir, in ns,
// connect to an address that refuses it.
func refuseConnect(t *testing.T, ctx context.Context, ns *netlab.NS, dir string, to netip.AddrPort) {
	t.Helper()
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	cmd := ns.Command(ctx, "python3", "-c",
		"import socket, sys; print(socket.socket().connect_ex((sys.argv[1], int(sys.argv[2]))))", to.Addr().String(), strconv.Itoa(int(to.Port())))
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(int(syscall.ECONNREFUSED)) {
		t.Fatalf("connect to %v from %s: %v %s, want ECONNREFUSED", to, ns.Name, err, out)
	}
}

// waitSegment waits until the flight recorder has opened a segment in
// dir: its history has begun.
func waitSegment(t *testing.T, ctx context.Context, dir string) {
	t.Helper()
	err := testutil.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		ents, err := os.ReadDir(dir)
		return err == nil && len(ents) > 0, nil
	})
	if err != nil {
		t.Fatalf("no flight segment in %s: %v", dir, err)
	}
}
