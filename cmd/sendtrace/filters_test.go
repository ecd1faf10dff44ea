package main

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func TestParseCIDR(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.0.0/15":     "198.18.0.0/15",
		"198.18.3.4/15":     "198.18.0.0/15",
		"198.18.0.2":        "198.18.0.2/32",
		"fd00::1":           "fd00::1/128",
		"fd00::/8":          "fd00::/8",
		"::ffff:198.18.0.2": "198.18.0.2/32",
	} {
		got, err := parseCIDR(in)
		if err != nil || got != netip.MustParsePrefix(want) {
			t.Errorf("parseCIDR(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"10.0.0.300/8", "nonsense", "198.18.0.0/33", ""} {
		if _, err := parseCIDR(bad); err == nil || !strings.Contains(err.Error(), "give a CIDR") {
			t.Errorf("parseCIDR(%q): want a one-line error saying what to give, got %v", bad, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	if d, err := parseDuration("1.5"); err != nil || d != 1500*time.Millisecond {
		t.Errorf("bare seconds: %v %v", d, err)
	}
	if d, err := parseDuration("2m"); err != nil || d != 2*time.Minute {
		t.Errorf("2m: %v %v", d, err)
	}
	for _, bad := range []string{"-1s", "0", "soon"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) accepted", bad)
		}
	}
}

func TestFilterFlagErrors(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"--pid abc", `invalid --pid "abc"`},
		{"--pid 0", `invalid --pid "0"`},
		{"--errno EFOO", `unknown errno "EFOO"`},
		{"--port 70000", `invalid --port "70000"`},
		{"--dst 1.2.3", `invalid --dst "1.2.3"`},
		{"--cgroup x", `invalid --cgroup "x"`},
	} {
		cmd := &cobra.Command{}
		get := addFilterFlags(cmd)
		if err := cmd.ParseFlags(strings.Fields(tc.args)); err != nil {
			t.Fatal(err)
		}
		_, err := get()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line containing %q", tc.args, err, tc.want)
		}
	}
	cmd := &cobra.Command{}
	get := addFilterFlags(cmd)
	self := strconv.Itoa(os.Getpid())
	if err := cmd.ParseFlags([]string{"--pid", self, "--pid", self, "--errno", "ECOMM", "--errno", "104", "--dst", "fd00::/8"}); err != nil {
		t.Fatal(err)
	}
	f, err := get()
	if err != nil || len(f.PIDs) != 2 || f.Errnos[0] != 70 || f.Errnos[1] != 104 || len(f.Dsts) != 1 {
		t.Errorf("repeatable flags: %+v %v", f, err)
	}
}

// A --pid that can never match is refused with what to give instead.
func TestPIDFlagRefusesThreads(t *testing.T) {
	pidErr := func(pid int) error {
		cmd := &cobra.Command{}
		get := addFilterFlags(cmd)
		if err := cmd.ParseFlags([]string{"--pid", strconv.Itoa(pid)}); err != nil {
			t.Fatal(err)
		}
		_, err := get()
		return err
	}
	// kthreadd is pid 2 on every Linux system.
	if err := pidErr(2); err == nil || !strings.Contains(err.Error(), "kernel thread (kthreadd)") {
		t.Errorf("--pid 2: %v, want a refusal naming the kernel thread", err)
	}
	if err := pidErr(os.Getpid()); err != nil {
		t.Errorf("own pid: %v", err)
	}
	// The Go runtime always runs threads besides the main one (sysmon).
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	tid := 0
	for _, e := range tasks {
		if n, _ := strconv.Atoi(e.Name()); n != os.Getpid() {
			tid = n
		}
	}
	if tid == 0 {
		t.Fatal("this process has a single thread")
	}
	err = pidErr(tid)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("thread of process %d (", os.Getpid())) ||
		!strings.Contains(err.Error(), fmt.Sprintf("give --pid %d", os.Getpid())) || strings.Contains(err.Error(), "\n") {
		t.Errorf("--pid %d (a thread): %v, want one line giving the process's pid", tid, err)
	}
	// A pid with no process is the tracer's to report, once it starts.
	if err := pidErr(1 << 30); err != nil {
		t.Errorf("--pid of no process: %v", err)
	}
}
