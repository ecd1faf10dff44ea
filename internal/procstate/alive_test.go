package procstate

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAliveZombie: a running process is alive; one that has exited and
// not yet been reaped (a real zombie) is not, nor once it is reaped.
func TestAliveZombie(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Fatal("Alive(self) = false")
	}
	running := exec.Command("sleep", "60")
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = running.Process.Kill(); _ = running.Wait() }()
	if !Alive(running.Process.Pid) {
		t.Error("a running sleep is not alive")
	}

	// A child that exits is a zombie until this process waits for it.
	child := exec.Command("true")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	pid := child.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for state(t, pid) != "Z" {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never became a zombie: state %q", pid, state(t, pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if Alive(pid) {
		t.Errorf("zombie %d (state Z in /proc/%d/stat) is alive", pid, pid)
	}
	if err := child.Wait(); err != nil {
		t.Fatal(err)
	}
	if Alive(pid) {
		t.Errorf("reaped %d is alive", pid)
	}
	if Alive(0) || Alive(-1) {
		t.Error("pid 0 or -1 is alive")
	}
}

func state(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return f[0]
}
