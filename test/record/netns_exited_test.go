package record_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestNamespaceOfExitedProcess: a network namespace made after the
// recording started, as a container's is, holds a process that stays (its
// PID 1) and one that fails a send and exits before the recorder has read
// the event. The namespace's sysctls and counters must still be recorded,
// read through the process that stayed.
func TestNamespaceOfExitedProcess(t *testing.T) {
	namespaceOfExitedProcess(t, false)
}

// TestNamespaceOfZombieProcess: as TestNamespaceOfExitedProcess, but the
// client that failed is a zombie when the event is read, its parent not
// having reaped it yet (a container's shell that exec'd its last command
// leaves its children so). A zombie is in no namespace any more: the
// namespace is read through the process that stayed.
func TestNamespaceOfZombieProcess(t *testing.T) {
	namespaceOfExitedProcess(t, true)
}

func namespaceOfExitedProcess(t *testing.T, zombie bool) {
	testutil.RequireRoot(t)
	ctx := testutil.Context(t, 3*time.Minute)
	failer, err := testutil.Build(t.TempDir(), "SENDTRACE_FAILER_BIN", "github.com/sendtrace/sendtrace/test/fleet/testdata/failer")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rec.jsonl")
	rec := startRecorder(t, ctx, path, nil, "--comm", "failer")

	// The container's PID 1: a namespace of its own, with no name in
	// /run/netns, and tcp_retries2 4.
	stay := exec.CommandContext(ctx, "unshare", "--net", "sleep", "300")
	if err := stay.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stay.Process.Kill(); _ = stay.Wait() })
	pid := stay.Process.Pid
	var own, ns unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &own); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := testutil.Poll(wctx, 10*time.Millisecond, func() (bool, error) {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		return strings.TrimSpace(string(comm)) == "sleep" && unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &ns) == nil && ns.Ino != own.Ino, nil
	}); err != nil {
		t.Fatalf("unshare --net sleep: %v", err)
	}
	if out, err := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(pid), "-n", "sh", "-c",
		"echo 4 > /proc/sys/net/ipv4/tcp_retries2").CombinedOutput(); err != nil {
		t.Fatalf("set tcp_retries2: %v: %s", err, out)
	}

	// The recorder is stopped while the client fails its send and exits,
	// so the client is gone when the event is read.
	if err := rec.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := func() (bool, error) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(rec.cmd.Process.Pid) + "/stat")
		_, after, _ := strings.Cut(string(b), ") ")
		return err == nil && strings.HasPrefix(after, "T"), nil
	}
	if err := testutil.Poll(wctx, 5*time.Millisecond, stopped); err != nil {
		t.Fatalf("the recorder did not stop: %v", err)
	}
	// nsenter -n execs failer in the namespace: the same pid, this
	// test's child.
	client := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(pid), "-n", failer)
	var out strings.Builder
	client.Stdout, client.Stderr = &out, &out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	reap := func() {
		if err := client.Wait(); err != nil {
			t.Fatalf("failer: %v: %s", err, out.String())
		}
	}
	if !zombie {
		reap()
	} else {
		// Not reaped until the recording has ended: a zombie.
		isZombie := func() (bool, error) {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(client.Process.Pid) + "/stat")
			_, after, _ := strings.Cut(string(b), ") ")
			return strings.HasPrefix(after, "Z"), nil
		}
		if err := testutil.Poll(wctx, 5*time.Millisecond, isZombie); err != nil {
			t.Fatalf("failer %d did not exit: %v", client.Process.Pid, err)
		}
	}
	if err := rec.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := rec.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, ctx)
	if zombie {
		reap()
	}

	rd, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var e events.Event
	failed := 0
	for {
		more, err := rd.Next(&e)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
		if e.Kind == events.KindSendError && uint64(e.Netns) == ns.Ino {
			failed++
		}
	}
	if rd.Footer == nil {
		t.Fatal("no footer")
	}
	if failed != 1 {
		t.Errorf("%d failed sends recorded in net:[%d], want 1", failed, ns.Ino)
	}
	var sysctls, counters bool
	for _, n := range rd.Footer.Namespaces {
		if n.Netns.Inode != ns.Ino {
			continue
		}
		t.Logf("sysctls of net:[%d]: through pid %d (%s), tcp_retries2 %q, note %q", ns.Ino, n.Netns.PID, n.Comm, n.Sysctls["net.ipv4.tcp_retries2"], n.Netns.Note)
		sysctls = n.Sysctls["net.ipv4.tcp_retries2"] == "4" && n.Netns.PID == uint32(pid)
	}
	for _, c := range rd.Footer.NetnsCounters {
		if c.Netns.Inode != ns.Ino {
			continue
		}
		t.Logf("counters of net:[%d]: through pid %d (%s), from %s, note %q, %d counters moved", ns.Ino, c.Netns.PID, c.Comm, c.From, c.Netns.Note, len(c.Delta))
		counters = c.Netns.PID == uint32(pid) && !strings.HasPrefix(c.Netns.Note, "counters not read")
	}
	if !sysctls {
		t.Errorf("the sysctls of net:[%d] were not read through pid %d, still in it: %+v", ns.Ino, pid, rd.Footer.Namespaces)
	}
	if !counters {
		t.Errorf("the counters of net:[%d] were not read through pid %d, still in it: %+v", ns.Ino, pid, rd.Footer.NetnsCounters)
	}
}
