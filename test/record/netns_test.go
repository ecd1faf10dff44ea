package record_test

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/report"
	"github.com/sendtrace/sendtrace/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestSystemWideRetries2Diff records system-wide (--dst, no --pid) while
// black-holed clients run in their own network namespace with
// tcp_retries2 4, then 6. Each header holds sendtrace's own namespace;
// the sysctls that decided the failures are the clients' namespace's, and
// diff must compare those.
func TestSystemWideRetries2Diff(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 5*time.Minute)
	b := newBlackHole(t, ctx)
	dir := t.TempDir()
	const clients = 2
	var clientNetns uint64

	run := func(retries2, name string) string {
		b.lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", retries2)
		cs := b.clients(t, ctx, clients, 3*time.Minute)
		var st unix.Stat_t
		if err := unix.Stat("/proc/"+strconv.Itoa(cs[0].PID())+"/ns/net", &st); err != nil {
			t.Fatal(err)
		}
		clientNetns = st.Ino
		path := filepath.Join(dir, name)
		rec := startRecorder(t, ctx, path, nil, "--dst", b.dst.Addr().String())
		b.drop(t, ctx, cs)
		finish(t, ctx, cs)
		if err := rec.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		rec.wait(t, ctx)
		b.undrop(t)
		return path
	}
	before := run("4", "retries4.jsonl")
	after := run("6", "retries6.jsonl")

	rd, err := record.Open(before)
	if err != nil {
		t.Fatal(err)
	}
	own := rd.Header.Sysctls["net.ipv4.tcp_retries2"]
	rd.Close()
	if own == "4" {
		t.Fatalf("sendtrace's own namespace has tcp_retries2 4 too: the test cannot tell namespaces apart")
	}

	for _, p := range []string{before, after} {
		rep := reportJSON(t, p)
		var found *report.Namespace
		for i, n := range rep.Namespaces {
			if n.Inode == clientNetns {
				found = &rep.Namespaces[i]
			}
		}
		want := map[string]string{before: "4", after: "6"}[p]
		if found == nil || found.Sysctls["net.ipv4.tcp_retries2"] != want || found.Events == 0 {
			t.Errorf("%s: clients' namespace %d not recorded with tcp_retries2 %s: %+v", p, clientNetns, want, rep.Namespaces)
		}
		text := sendtrace(t, "report", p)
		if !strings.Contains(text, "Sysctls of net:[") || !strings.Contains(text, "net.ipv4.tcp_retries2  "+want) {
			t.Errorf("%s: report does not print the clients' namespace's sysctls:\n%s", p, text)
		}
	}

	var d report.Diff
	if err := json.Unmarshal([]byte(sendtrace(t, "diff", "-o", "json", before, after)), &d); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range d.Sysctls {
		if s.Name == "net.ipv4.tcp_retries2" && s.Before == "4" && s.After == "6" {
			found = true
		}
	}
	if !found {
		t.Errorf("diff does not show tcp_retries2 4 -> 6: %+v", d.Sysctls)
	}
	t.Logf("diff:\n%s", sendtrace(t, "diff", before, after))
}
