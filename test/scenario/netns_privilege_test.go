package scenario_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestRecordOtherNetnsWithoutSysAdmin records as user 65534 with
// CAP_BPF and CAP_PERFMON only, while a client in another network
// namespace has its connection reset. That namespace cannot be entered:
// the recording goes on, lists the namespace with a note instead of
// values, and says so on stderr.
func TestRecordOtherNetnsWithoutSysAdmin(t *testing.T) {
	ctx := scenarioContext(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	dir, bin := testutil.NobodyCopy(t, sendtraceBin)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	startServer(t, ctx, lab.Server, "reset", dst)
	cl := startClient(t, ctx, lab.Client, "-to", dst.String(), "-await-error-before", "1", "-count", "2", "-size", "100")
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(cl.PID())+"/ns/net", &st); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(dir, "r.jsonl")
	ready := filepath.Join(dir, "ready")
	caps := []string{"--inh-caps=-all,+bpf,+perfmon", "--ambient-caps=-all,+bpf,+perfmon"}
	cmd := asNobody(ctx, bin, caps, "record", "-o", path, "--dst", dst.Addr().String(), "--ready-file", ready, "--status-interval", "0")
	var stderr testutil.LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	wctx, cancel := context.WithTimeout(ctx, tracerReady)
	defer cancel()
	if err := testutil.WaitFile(wctx, ready); err != nil {
		t.Fatalf("record as nobody not ready: %v\n%s", err, stderr.Bytes())
	}
	release(t, cl, "start")
	finish(t, ctx, cl)
	if err := testutil.Poll(wctx, 50*time.Millisecond, func() (bool, error) {
		return strings.Contains(string(stderr.Bytes()), "needs CAP_SYS_ADMIN"), nil
	}); err != nil {
		t.Errorf("stderr does not say the namespace could not be entered:\n%s", stderr.Bytes())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("record as nobody: %v\n%s", err, stderr.Bytes())
	}
	t.Logf("stderr:\n%s", stderr.Bytes())

	out, err := exec.Command(bin, "report", "-o", "json", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Namespaces []struct {
			Inode   uint64            `json:"inode"`
			Events  uint64            `json:"events"`
			Note    string            `json:"note"`
			Sysctls map[string]string `json:"sysctls"`
		} `json:"netns_sysctls"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range rep.Namespaces {
		if n.Inode == st.Ino {
			found = true
			if len(n.Sysctls) != 0 || !strings.Contains(n.Note, "needs CAP_SYS_ADMIN") || n.Events == 0 {
				t.Errorf("client namespace %+v: want events, no values and a note naming CAP_SYS_ADMIN", n)
			}
		}
	}
	if !found {
		t.Errorf("client namespace %d not listed: %s", st.Ino, out)
	}
}

// TestRecordPIDWithoutSysAdmin is the --pid form: the target's namespace
// cannot be opened by user 65534, and record goes on without its sysctls,
// saying which capabilities would add them, instead of failing.
func TestRecordPIDWithoutSysAdmin(t *testing.T) {
	ctx := scenarioContext(t)
	dir, bin := testutil.NobodyCopy(t, sendtraceBin)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	startServer(t, ctx, lab.Server, "reset", dst)
	cl := startClient(t, ctx, lab.Client, "-to", dst.String(), "-await-error-before", "1", "-count", "2", "-size", "100")
	defer func() { release(t, cl, "start"); finish(t, ctx, cl) }()

	path := filepath.Join(dir, "pid.jsonl")
	caps := []string{"--inh-caps=-all,+bpf,+perfmon", "--ambient-caps=-all,+bpf,+perfmon"}
	out, err := asNobody(ctx, bin, caps, "record", "-o", path, "--pid", strconv.Itoa(cl.PID()), "--duration", "1s", "--status-interval", "0").CombinedOutput()
	if err != nil {
		t.Fatalf("record --pid as nobody failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "needs CAP_SYS_ADMIN") {
		t.Errorf("record did not say which capability would add the sysctls:\n%s", out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Netns struct {
			PID  int    `json:"pid"`
			Note string `json:"note"`
		} `json:"netns"`
	}
	if err := json.Unmarshal(b[:strings.IndexByte(string(b), '\n')], &h); err != nil {
		t.Fatal(err)
	}
	if h.Netns.PID != cl.PID() || !strings.Contains(h.Netns.Note, "CAP_SYS_ADMIN") {
		t.Errorf("header netns %+v: want pid %d and a note naming CAP_SYS_ADMIN", h.Netns, cl.PID())
	}
}
