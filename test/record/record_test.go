// Package record_test records real faults made in throwaway network
// namespaces with the built sendtrace binary, then checks what report and
// diff make of the files: after kill -9, across compression, and across a
// sysctl change whose effect comes from the kernel itself.
package record_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/report"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

var (
	sendtraceBin string
	actorBin     string
)

func TestMain(m *testing.M) {
	testutil.RunMain(m, func(dir string) error {
		return netlab.BuildBinaries(dir, &sendtraceBin, &actorBin)
	})
}

const port = 9000

// blackHole is a server namespace that silently drops a client
// namespace's segments once the clients are connected: the peer vanished
// without a reset, and TCP retransmits until tcp_retries2 gives up.
type blackHole struct {
	lab *netlab.Pair
	dst netip.AddrPort
}

func newBlackHole(t *testing.T, ctx context.Context) *blackHole {
	t.Helper()
	b := &blackHole{lab: netlab.NewPair(t, netlab.LinkOpts{})}
	b.dst = b.lab.ServerAddr(false, port)
	srv := b.lab.Server.StartActor(t, actorBin, "server", "-mode", "discard", "-listen", b.dst.String())
	if _, err := srv.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	return b
}

// clients starts n clients parked before they create their sockets, so
// the recorder can attach first and knows every socket's owner.
func (b *blackHole) clients(t *testing.T, ctx context.Context, n int, timeout time.Duration) []*netlab.Actor {
	t.Helper()
	var cs []*netlab.Actor
	for range n {
		c := b.lab.Client.StartActor(t, actorBin, "client", "-to", b.dst.String(), "-pause-connected",
			"-until-error", "-count", "0", "-interval", "100ms", "-size", "100", "-timeout", timeout.String())
		if _, err := c.WaitPhase(ctx, "start"); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// drop connects the clients, turns the server into a black hole and lets
// the clients send.
func (b *blackHole) drop(t *testing.T, ctx context.Context, cs []*netlab.Actor) {
	t.Helper()
	for _, c := range cs {
		if err := c.Release("start"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitPhase(ctx, "connected"); err != nil {
			t.Fatal(err)
		}
	}
	b.lab.Server.MustNft(fmt.Sprintf(`table inet lab {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr %s tcp dport %d drop
	}
}`, b.lab.ClientAddr(false), port))
	for _, c := range cs {
		if err := c.Release("connected"); err != nil {
			t.Fatal(err)
		}
	}
}

func (b *blackHole) undrop(t *testing.T) {
	t.Helper()
	if err := b.lab.Server.Nft("delete table inet lab"); err != nil {
		t.Fatal(err)
	}
}

// recorder is one running `sendtrace record`.
type recorder struct {
	cmd            *exec.Cmd
	path           string
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
}

// recordArgs are added to every recording a test starts (see
// withoutSeeding).
var recordArgs []string

func startRecorder(t *testing.T, ctx context.Context, path string, cs []*netlab.Actor, extra ...string) *recorder {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	args := []string{"record", "-o", path, "--ready-file", ready, "--status-interval", "5s"}
	for _, c := range cs {
		args = append(args, "--pid", strconv.Itoa(c.PID()))
	}
	args = append(args, extra...)
	args = append(args, recordArgs...)
	r := &recorder{path: path, done: make(chan struct{})}
	r.cmd = exec.Command(sendtraceBin, args...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err := testutil.Poll(wctx, 20*time.Millisecond, func() (bool, error) {
		if _, err := os.Stat(ready); err == nil {
			return true, nil
		}
		select {
		case <-r.done:
			return false, fmt.Errorf("sendtrace record exited before it was ready: %v\n%s", r.err, &r.stderr)
		default:
			return false, nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// wait waits for the recorder to end by itself (every --pid target
// exited) and checks that it succeeded.
func (r *recorder) wait(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-r.done:
	case <-ctx.Done():
		_ = r.cmd.Process.Signal(syscall.SIGINT)
		<-r.done
	}
	if r.err != nil {
		t.Fatalf("sendtrace record: %v\nstderr: %s", r.err, &r.stderr)
	}
	t.Logf("record stderr:\n%s", &r.stderr)
}

func finish(t *testing.T, ctx context.Context, cs []*netlab.Actor) {
	t.Helper()
	for _, c := range cs {
		rep, err := c.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Error != "" {
			t.Fatalf("%v: %s", c, rep.Error)
		}
	}
}

func sendtrace(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(sendtraceBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("sendtrace %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func reportJSON(t *testing.T, path string) *report.Report {
	t.Helper()
	var rep report.Report
	if err := json.Unmarshal([]byte(sendtrace(t, "report", "-o", "json", path)), &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

// TestKilledRecorder kills the recorder with SIGKILL while a black-holed
// peer is being retransmitted to, and checks that report reads every
// complete record and says the footer is missing.
func TestKilledRecorder(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 2*time.Minute)
	b := newBlackHole(t, ctx)
	// The connection outlives the kill however slowly the machine runs:
	// 8 retransmissions take some 100s, and the recorder of a --pid whose
	// process is gone would stop by itself.
	b.lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", "8")
	cs := b.clients(t, ctx, 1, 90*time.Second)
	path := filepath.Join(t.TempDir(), "killed.jsonl")
	rec := startRecorder(t, ctx, path, cs)
	b.drop(t, ctx, cs)

	// Wait for a few retransmits to be flushed, then kill mid-stream.
	err := testutil.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		data, err := os.ReadFile(path)
		return err == nil && bytes.Count(data, []byte(`"kind":"retransmit"`)) >= 4, err
	})
	if err != nil {
		t.Fatalf("no retransmits recorded: %v\n%s", err, &rec.stderr)
	}
	if err := rec.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-rec.done
	b.undrop(t)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("recording mode %v, want 0600", st.Mode().Perm())
	}
	complete := bytes.Count(data, []byte("\n"))
	rep := reportJSON(t, path)
	if rep.Complete {
		t.Fatal("report says the killed recording is complete")
	}
	if int(rep.Events) != complete-1 {
		t.Errorf("report read %d events; the file has %d complete records after the header", rep.Events, complete-1)
	}
	if len(rep.Problems) == 0 || !strings.Contains(rep.Problems[0], "footer missing") {
		t.Errorf("problems %q do not say the footer is missing", rep.Problems)
	}
	text := sendtrace(t, "report", path)
	if !strings.Contains(text, "warning: footer missing") {
		t.Errorf("text report does not warn about the footer:\n%s", text)
	}
	t.Logf("report of the killed recording:\n%s", text)
}

// TestFullDisk records onto a real tmpfs that fills up during the session.
// sendtrace record must stop with one line that says the disk is full,
// exit non-zero, and leave a file that report reads up to the last record
// that fitted, with no half record at its end.
func TestFullDisk(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 2*time.Minute)
	dir := testutil.SmallDisk(t, 128<<10)

	b := newBlackHole(t, ctx)
	b.lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", "6")
	cs := b.clients(t, ctx, 4, 90*time.Second)
	path := filepath.Join(dir, "full.jsonl")
	rec := startRecorder(t, ctx, path, cs)

	// Fill the file system but for four pages: the header is on disk, and
	// the first flushes fit after it even when a loaded machine delays
	// the flush timer and one flush carries more records.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	if free < 5*st.Bsize {
		t.Fatalf("tmpfs has %d bytes free after the header, want at least 5 pages", free)
	}
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, free-4*st.Bsize), 0o600); err != nil {
		t.Fatalf("fill the tmpfs: %v", err)
	}
	b.drop(t, ctx, cs)

	select {
	case <-rec.done:
	case <-ctx.Done():
		t.Fatalf("sendtrace record still running on a full disk:\n%s", &rec.stderr)
	}
	b.undrop(t)
	if rec.err == nil {
		t.Fatal("sendtrace record exited 0 on a full disk")
	}
	errLine, said := "", 0
	for _, l := range strings.Split(strings.TrimSpace(rec.stderr.String()), "\n") {
		if strings.Contains(l, "disk is full") {
			errLine = l
			said++
		}
	}
	if said != 1 || !strings.Contains(errLine, "free space and record again") {
		t.Errorf("not one line (%d) saying the disk is full and what to do:\n%s", said, &rec.stderr)
	}
	t.Logf("sendtrace record: %v: %s", rec.err, errLine)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		t.Fatalf("recording (%d bytes) does not end at a record boundary", len(data))
	}
	rep := reportJSON(t, path)
	if rep.Complete {
		t.Error("report says the recording cut by a full disk is complete")
	}
	if lines := bytes.Count(data, []byte("\n")); rep.Events == 0 || int(rep.Events) != lines-1 {
		t.Errorf("report read %d events; the file has %d records after the header", rep.Events, lines-1)
	}
	if len(rep.Problems) == 0 || !strings.Contains(rep.Problems[0], "footer missing") {
		t.Errorf("problems %q do not say the footer is missing", rep.Problems)
	}
}

// TestRetries2Diff records the same black hole twice from the same client
// namespace, with tcp_retries2 at 8 and then 4. The kernel gives up sooner
// with 4, and diff must show both the sysctl and the shorter time to
// ETIMEDOUT. The second recording is compressed, and reports of plain and
// compressed copies of each must be identical.
func TestRetries2Diff(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 5*time.Minute)
	b := newBlackHole(t, ctx)
	dir := t.TempDir()
	const clients = 5

	run := func(retries2, name string) string {
		b.lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", retries2)
		cs := b.clients(t, ctx, clients, 3*time.Minute)
		path := filepath.Join(dir, name)
		rec := startRecorder(t, ctx, path, cs)
		b.drop(t, ctx, cs)
		finish(t, ctx, cs)
		rec.wait(t, ctx)
		b.undrop(t)
		return path
	}
	before := run("8", "retries8.jsonl")
	after := run("4", "retries4.jsonl.zst")

	for _, p := range []string{before, after} {
		rd, err := record.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := rd.Header.Sysctls["net.ipv4.tcp_retries2"]; got != map[string]string{before: "8", after: "4"}[p] {
			t.Errorf("%s: header tcp_retries2 = %q: not read in the traced namespace", p, got)
		}
		rd.Close()
		rep := reportJSON(t, p)
		if !rep.Complete || rep.TTF == nil || rep.TTF.N != clients {
			t.Fatalf("%s: complete %v, time to failure %+v; want %d failed connections", p, rep.Complete, rep.TTF, clients)
		}
		if rep.ByErrno["error_report"]["ETIMEDOUT"] != clients || rep.ByErrno["send_error"]["ETIMEDOUT"] != clients {
			t.Errorf("%s: by errno %v, want %d ETIMEDOUT error reports and send errors", p, rep.ByErrno, clients)
		}
		checkPIDCounters(t, p, rep, clients)
	}

	var d report.Diff
	if err := json.Unmarshal([]byte(sendtrace(t, "diff", "-o", "json", before, after)), &d); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range d.Sysctls {
		if s.Name == "net.ipv4.tcp_retries2" && s.Before == "8" && s.After == "4" {
			found = true
		} else {
			t.Errorf("unexpected sysctl difference %+v", s)
		}
	}
	if !found {
		t.Errorf("diff does not show tcp_retries2 8 -> 4: %+v", d.Sysctls)
	}
	if d.TTF.Before == nil || d.TTF.After == nil || d.TTF.After.MaxSec >= d.TTF.Before.MinSec {
		t.Fatalf("time to failure does not get shorter: before %+v after %+v", d.TTF.Before, d.TTF.After)
	}
	if d.TTF.Verdict != report.VerdictChanged {
		t.Errorf("time to failure verdict %q, want %q", d.TTF.Verdict, report.VerdictChanged)
	}
	if len(d.Destinations) != 1 || d.Destinations[0].Dst != b.dst.String() {
		t.Errorf("per-destination diff %+v, want %s", d.Destinations, b.dst)
	}
	t.Logf("diff:\n%s", sendtrace(t, "diff", before, after))
	t.Logf("report:\n%s", sendtrace(t, "report", after))
	rep := reportJSON(t, after)
	cookie := strconv.FormatUint(rep.FailedConns[0].Cookie, 10)
	timeline := sendtrace(t, "report", "--conn", cookie, after)
	if !strings.Contains(timeline, "error_report ETIMEDOUT") || !strings.Contains(timeline, "send_error ETIMEDOUT") {
		t.Errorf("timeline lacks the failure:\n%s", timeline)
	}
	t.Logf("timeline:\n%s", timeline)

	checkCompressedReports(t, before, after)
	checkStandardTools(t, after)
}

// checkCompressedReports compresses the plain recording and decompresses
// the compressed one with the standard tools, and checks that every copy
// gives the same report as its original.
func checkCompressedReports(t *testing.T, plain, zst string) {
	t.Helper()
	dir := t.TempDir()
	gz := filepath.Join(dir, "plain.jsonl.gz")
	shell(t, fmt.Sprintf("gzip -c %s > %s", plain, gz))
	zs := filepath.Join(dir, "plain.jsonl.zst")
	shell(t, fmt.Sprintf("zstd -q -c %s > %s", plain, zs))
	unz := filepath.Join(dir, "unzstd.jsonl")
	shell(t, fmt.Sprintf("zstdcat %s > %s", zst, unz))

	norm := func(path string, args ...string) string {
		out := sendtrace(t, append(append([]string{"report"}, args...), path)...)
		return strings.ReplaceAll(out, path, "FILE")
	}
	for _, c := range [][2]string{{plain, gz}, {plain, zs}, {zst, unz}} {
		for _, args := range [][]string{nil, {"-o", "json"}} {
			a, b := norm(c[0], args...), norm(c[1], args...)
			if a != b {
				t.Errorf("report %v of %s and %s differ:\n--- %s\n%s\n--- %s\n%s", args, c[0], c[1], c[0], a, c[1], b)
			}
		}
	}
}

// checkStandardTools reads a compressed recording with zstdcat and jq, as
// someone without sendtrace would.
func checkStandardTools(t *testing.T, zst string) {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Log("jq not installed; reading with zstdcat only")
		out := shell(t, "zstdcat "+zst)
		if !strings.Contains(out, `"kind":"footer"`) {
			t.Error("zstdcat output has no footer")
		}
		return
	}
	out := shell(t, fmt.Sprintf(`zstdcat %s | jq -r 'select(.kind=="send_error") | .errno_name'`, zst))
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	for sc.Scan() {
		if sc.Text() != "ETIMEDOUT" {
			t.Errorf("jq: send_error with %q", sc.Text())
		}
		n++
	}
	if n == 0 {
		t.Error("jq found no send_error records")
	}
	kinds := shell(t, fmt.Sprintf(`zstdcat %s | jq -r '.kind' | sed -n '1p;$p'`, zst))
	if kinds != "header\nfooter\n" {
		t.Errorf("first and last kinds %q, want header and footer", kinds)
	}
}

func shell(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return string(out)
}

// Re-running the same record command must not destroy the recording an
// earlier run made: sendtrace refuses before it loads anything, and
// --force is the explicit way to replace it.
func TestRecordKeepsExistingFile(t *testing.T) {
	testutil.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "incident.jsonl")
	earlier := []byte("an earlier incident's recording\n")
	if err := os.WriteFile(path, earlier, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sendtraceBin, "record", "-o", path, "--duration", "1s").CombinedOutput()
	if err == nil {
		t.Fatalf("record over an existing file succeeded: %s", out)
	}
	msg := strings.TrimSpace(string(out))
	if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "exists") || !strings.Contains(msg, "--force") {
		t.Errorf("want one line naming the file and --force, got %q", msg)
	}
	if b, _ := os.ReadFile(path); string(b) != string(earlier) {
		t.Fatalf("the existing file changed: %q", b)
	}
	out, err = exec.Command(sendtraceBin, "record", "-o", path, "--force", "--duration", "1s", "--port", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("record --force: %v: %s", err, out)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"kind":"header"`) {
		t.Errorf("--force did not write a recording: %.80q", b)
	}
}
