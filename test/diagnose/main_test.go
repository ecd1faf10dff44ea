// Package diagnose_test makes real faults in throwaway network namespaces
// (internal/netlab) and checks that the built sendtrace binary, in JSON
// mode, names each one with the right diagnosis, and names nothing where
// nothing failed.
package diagnose_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

var sendtraceBin, actorBin, peerBin string

func TestMain(m *testing.M) {
	testutil.RunMain(m, func(dir string) (err error) {
		if peerBin, err = testutil.Build(dir, "SENDTRACE_PEER", "github.com/sendtrace/sendtrace/test/diagnose/peer"); err != nil {
			return err
		}
		return netlab.BuildBinaries(dir, &sendtraceBin, &actorBin)
	})
}

const port = 9000

type tracer struct {
	*testutil.Sendtrace
}

func startTracer(t *testing.T, ctx context.Context, args ...string) *tracer {
	t.Helper()
	return &tracer{testutil.StartSendtrace(t, ctx, sendtraceBin, 60*time.Second, append([]string{"-o", "json"}, args...)...)}
}

// stop ends the tracer as a user would and returns its events and
// diagnoses, in stream order.
func (tr *tracer) stop(t *testing.T) ([]events.Event, []diagnose.Diagnosis) {
	t.Helper()
	out, stderr := tr.Stop(t, 30*time.Second)
	t.Logf("sendtrace stderr:\n%s", stderr)
	var evs []events.Event
	var ds []diagnose.Diagnosis
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		kind, err := events.PeekKind(line)
		if err != nil {
			t.Errorf("bad line %q: %v", line, err)
			continue
		}
		if kind == "diagnosis" {
			var d diagnose.Diagnosis
			if err := diagnose.ParseJSON(line, &d); err != nil {
				t.Errorf("diagnosis %q: %v", line, err)
			}
			ds = append(ds, d)
			t.Logf("diagnosis: %s", line)
			continue
		}
		var e events.Event
		if err := events.ParseJSON(line, &e); err != nil {
			t.Errorf("event %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sendtrace stdout:\n%s", out)
		}
	})
	return evs, ds
}

// peerResult is what test/diagnose/peer prints.
type peerResult struct {
	PID     int      `json:"pid"`
	Cookies []uint64 `json:"cookies"`
	Errnos  []string `json:"errnos"`
	Sends   int      `json:"sends"`
	Error   string   `json:"error"`
}

type peer struct {
	cmd    *exec.Cmd
	goFile string
	out    testutil.LockedBuffer
	done   chan struct{}
	err    error
}

func startPeerServer(t *testing.T, ctx context.Context, ns *netlab.NS, args ...string) {
	t.Helper()
	startPeerRole(t, ctx, ns, "server", args...)
}

// startPeerRole starts test/diagnose/peer's role (server, upload) in ns
// and waits until it listens.
func startPeerRole(t *testing.T, ctx context.Context, ns *netlab.NS, role string, args ...string) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := ns.Command(context.Background(), peerBin, append([]string{role}, args...)...)
	cmd.Env = append(os.Environ(), "PEER_READY="+ready)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-waited })
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := testutil.WaitFile(wctx, ready); err != nil {
		t.Fatalf("peer server not listening: %v", err)
	}
}

// startPeerClient starts a client that waits for its go file, so the
// tracer can be started against its pid first.
func startPeerClient(t *testing.T, ns *netlab.NS, args ...string) *peer {
	t.Helper()
	p := &peer{goFile: filepath.Join(t.TempDir(), "go"), done: make(chan struct{})}
	p.cmd = ns.Command(context.Background(), peerBin, append([]string{"client", "-go", p.goFile}, args...)...)
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *peer) pidArg() string { return "--pid=" + strconv.Itoa(p.cmd.Process.Pid) }

func (p *peer) run(t *testing.T, ctx context.Context) *peerResult {
	t.Helper()
	if err := os.WriteFile(p.goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		t.Fatalf("peer client still running: %s", p.out.Bytes())
	}
	var r peerResult
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		t.Fatalf("peer client: %v (%v): %s", err, p.err, p.out.Bytes())
	}
	t.Logf("peer client: %+v", r)
	return &r
}

func scenario(t *testing.T) context.Context {
	testutil.RequireRoot(t)
	return testutil.Context(t, 3*time.Minute)
}

// want returns the diagnoses with rule on one of cookies (any socket when
// cookies is empty), failing the test when there is none.
func want(t *testing.T, ds []diagnose.Diagnosis, rule string, cookies ...uint64) []diagnose.Diagnosis {
	t.Helper()
	var got []diagnose.Diagnosis
	for _, d := range ds {
		if d.Rule != rule {
			continue
		}
		if len(cookies) > 0 {
			found := false
			for _, c := range cookies {
				found = found || c == d.Cookie
			}
			if !found {
				continue
			}
		}
		got = append(got, d)
	}
	if len(got) == 0 {
		var rules []string
		for _, d := range ds {
			rules = append(rules, d.Rule)
		}
		t.Fatalf("no %s diagnosis for cookies %v; got %v", rule, cookies, rules)
	}
	for _, d := range got {
		if d.Evidence.Text == "" || d.NextStep == "" || d.Confidence == "" || d.ConfidenceWhy == "" {
			t.Errorf("%s: incomplete diagnosis %+v", rule, d)
		}
	}
	t.Logf("%s", got[0].String())
	return got
}

func rulesOf(ds []diagnose.Diagnosis) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Rule)
	}
	return strings.Join(s, ",")
}
