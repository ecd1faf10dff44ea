package record_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// liveDiagnoses returns the diagnoses the recorder wrote into a plain
// recording as it ran, by cookie.
func liveDiagnoses(t *testing.T, path string) map[uint64]diagnose.Diagnosis {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[uint64]diagnose.Diagnosis{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if !bytes.HasPrefix(sc.Bytes(), []byte(`{"kind":"diagnosis"`)) {
			continue
		}
		var d diagnose.Diagnosis
		if err := diagnose.ParseJSON(sc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		out[d.Cookie] = d
	}
	return out
}

// TestRetries2AsTheKernelDoes black-holes a connection with tcp_retries2
// set in the client's namespace, records it, and measures what the kernel
// did: it keeps a clock from the first retransmission timeout (a tail
// loss probe does not start it) and gives up at the first timeout at
// which the clock has reached tcp_retries2's model, 200 ms·(2^(n+1)−1),
// retransmitting at every timeout before: with 3 (3 s) four times, over
// some 6.2 s, where the textbook reading of the model says three times in
// 3 s. The diagnosis then names the value the recording holds for that
// namespace, and the retransmissions and time the kernel took. With 5
// the recording is made with --pid, and the header holds the client's
// namespace; with 3 it is system-wide (--dst), and only the footer does.
func TestRetries2AsTheKernelDoes(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 4*time.Minute)
	b := newBlackHole(t, ctx)
	dir := t.TempDir()
	for _, n := range []int{3, 5} {
		b.lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", strconv.Itoa(n))
		cs := b.clients(t, ctx, 1, 2*time.Minute)
		path := filepath.Join(dir, fmt.Sprintf("retries%d.jsonl", n))
		filter := []string{"--dst", b.dst.Addr().String()}
		if n == 5 {
			filter = []string{"--pid", strconv.Itoa(cs[0].PID())}
		}
		rec := startRecorder(t, ctx, path, nil, filter...)
		b.drop(t, ctx, cs)
		finish(t, ctx, cs)
		if n == 3 {
			if err := rec.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
		}
		rec.wait(t, ctx)
		b.undrop(t)

		evs, _ := testutil.ReadRecording(t, path)
		var cookie uint64
		var netns uint32
		var clock, last, end uint64
		rtx := 0
		for _, e := range evs {
			if e.Dst != b.dst || e.Cookie == 0 {
				continue
			}
			switch {
			case e.Kind == events.KindRetransmit && e.RetransKind == events.RetransRTO && (cookie == 0 || e.Cookie == cookie):
				// The first connection to time out is measured, alone:
				// another one to that destination has its own clock.
				if clock == 0 {
					clock, cookie, netns = e.Mono, e.Cookie, e.Netns
				}
				last = e.Mono
				rtx++
			case e.Kind == events.KindErrorReport && e.Errno == events.ETIMEDOUT && e.Cookie == cookie:
				end = e.Mono
			}
		}
		if clock == 0 || end == 0 {
			t.Fatalf("retries2=%d: no RTO retransmissions or no ETIMEDOUT in the recording", n)
		}
		model := time.Duration((2<<n)-1) * 200 * time.Millisecond
		lastAt, endAt := time.Duration(last-clock), time.Duration(end-clock)
		t.Logf("tcp_retries2=%d (model %v): %d RTO retransmissions, the last %v after the first; ETIMEDOUT %v after it", n, model, rtx, lastAt, endAt)
		if lastAt >= model || endAt < model-30*time.Millisecond {
			t.Errorf("retries2=%d: the kernel retransmitted until %v and gave up at %v; the rule says it gives up at the first timeout at or after %v", n, lastAt, endAt, model)
		}

		rep := reportJSON(t, path)
		found := false
		for _, d := range rep.Diagnoses {
			if d.Cookie != cookie {
				continue
			}
			found = true
			t.Logf("retries2=%d: %s", n, d.String())
			want := fmt.Sprintf("net.ipv4.tcp_retries2=%d, as recorded for net:[%d]", n, netns)
			if d.Rule != "black-hole" || !strings.HasPrefix(d.Evidence.Setting, want) {
				t.Errorf("retries2=%d: %s with setting %q, want black-hole naming %q", n, d.Rule, d.Evidence.Setting, want)
			}
			if !strings.Contains(d.Evidence.Setting, fmt.Sprintf("after %d retransmissions", rtx)) {
				t.Errorf("retries2=%d: setting %q does not give the kernel's %d retransmissions", n, d.Evidence.Setting, rtx)
			}
		}
		if !found {
			t.Errorf("retries2=%d: no diagnosis of connection %d", n, cookie)
		}
		// The recorder's own diagnosis, made live, names it too: the
		// namespace's sysctls were read at its first event.
		live := liveDiagnoses(t, path)
		if d, ok := live[cookie]; !ok || !strings.HasPrefix(d.Evidence.Setting, fmt.Sprintf("net.ipv4.tcp_retries2=%d, as recorded", n)) {
			t.Errorf("retries2=%d: the recording's live diagnosis %+v", n, d)
		}
	}
}

// synConnect is a Python client that makes one blocking connect once
// its go file exists.
const synConnect = `
import os, socket, sys, time
host, port, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.01)
try:
    socket.create_connection((host, port))
except OSError as e:
    print(e.errno)
`

// TestSynRetriesAsTheKernelDoes: a connect whose SYNs the server's host
// drops, with tcp_syn_retries=2 in the client's namespace. The kernel's
// clock starts at the SYN; its first retransmissions come a second apart
// (linear), so it retransmits five times before the timeout at least
// 1 s·(2^3−1) = 7 s after the SYN ends it. The diagnosis names the
// recorded value, and the kernel's retransmissions and time, with high
// confidence although the linear retransmissions did not back off.
func TestSynRetriesAsTheKernelDoes(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 2*time.Minute)
	b := newBlackHole(t, ctx)
	b.lab.Client.MustSetSysctl("net.ipv4.tcp_syn_retries", "2")
	b.lab.Server.MustNft(fmt.Sprintf(`table inet lab {
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr %s tcp dport %d drop
	}
}`, b.lab.ClientAddr(false), port))
	path := filepath.Join(t.TempDir(), "syn.jsonl")
	if got := recordPython(t, ctx, b.lab.Client, path, synConnect, nil, b.dst.Addr().String(), strconv.Itoa(int(b.dst.Port()))); got != "110" {
		t.Fatalf("lab: the connect ended with %q, want ETIMEDOUT (110)", got)
	}

	evs, _ := testutil.ReadRecording(t, path)
	var cookie uint64
	var netns uint32
	var syn, last, end uint64
	rtx := 0
	for _, e := range evs {
		switch {
		case e.Kind == events.KindStateChange && e.State == events.StateSynSent && syn == 0:
			syn, cookie, netns = e.Mono, e.Cookie, e.Netns
		case e.Kind == events.KindRetransmit && e.Cookie == cookie:
			last = e.Mono
			rtx++
		case e.Kind == events.KindErrorReport && e.Errno == events.ETIMEDOUT && e.Cookie == cookie:
			end = e.Mono
		}
	}
	if syn == 0 || end == 0 {
		t.Fatal("no SYN_SENT or no ETIMEDOUT in the recording")
	}
	model := 7 * time.Second
	lastAt, endAt := time.Duration(last-syn), time.Duration(end-syn)
	t.Logf("tcp_syn_retries=2 (model %v): %d SYN retransmissions, the last %v after the SYN; ETIMEDOUT %v after it", model, rtx, lastAt, endAt)
	if lastAt >= model || endAt < model-30*time.Millisecond {
		t.Errorf("the kernel retransmitted the SYN until %v and gave up at %v; the rule says it gives up at the first timeout at or after %v", lastAt, endAt, model)
	}
	rep := reportJSON(t, path)
	found := false
	for _, d := range rep.Diagnoses {
		if d.Cookie != cookie {
			continue
		}
		found = true
		t.Log(d.String())
		want := fmt.Sprintf("net.ipv4.tcp_syn_retries=2, as recorded for net:[%d]", netns)
		if d.Rule != "black-hole" || d.Confidence != "high" || !strings.HasPrefix(d.Evidence.Setting, want) || !strings.Contains(d.Evidence.Setting, fmt.Sprintf("after %d retransmissions", rtx)) {
			t.Errorf("%s with setting %q, want black-hole naming %q and the kernel's %d retransmissions", d.Rule, d.Evidence.Setting, want, rtx)
		}
	}
	if !found {
		t.Errorf("no diagnosis of connection %d", cookie)
	}
}
