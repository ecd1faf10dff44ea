package loader

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// bpfArch is the __TARGET_ARCH_* name bpf2go compiles each GOARCH's object
// with.
var bpfArch = map[string]string{"amd64": "x86", "arm64": "arm64"}

// TestSyscallNamesMatchBPF reads the syscall numbers the BPF object of this
// architecture watches from bpf/lib/syscall.h and checks them against
// Linux's numbers for this GOARCH, and that the Go side names exactly the
// send family among them: a number right on one architecture only would
// name the wrong syscall, or none, on the other.
func TestSyscallNamesMatchBPF(t *testing.T) {
	arch, ok := bpfArch[runtime.GOARCH]
	if !ok {
		t.Fatalf("no BPF object is built for %s", runtime.GOARCH)
	}
	f, err := os.Open("../../bpf/lib/syscall.h")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	nums := map[string]uint32{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#if defined(") || strings.HasPrefix(line, "#elif defined(") {
			in = strings.Contains(line, "(__TARGET_ARCH_"+arch+")")
			continue
		}
		if strings.HasPrefix(line, "#else") || strings.HasPrefix(line, "#endif") {
			in = false
			continue
		}
		f := strings.Fields(line)
		if !in || len(f) != 3 || f[0] != "#define" || !strings.HasPrefix(f[1], "NR_") {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		nums[strings.TrimPrefix(f[1], "NR_")] = uint32(n)
	}
	// x/sys/unix numbers the syscalls for the GOARCH it is built for.
	linux := map[string]uint32{
		"write": unix.SYS_WRITE, "writev": unix.SYS_WRITEV, "sendto": unix.SYS_SENDTO,
		"sendmsg": unix.SYS_SENDMSG, "sendmmsg": unix.SYS_SENDMMSG, "connect": unix.SYS_CONNECT,
	}
	sends := 0
	for name, nr := range nums {
		want, ok := linux[name]
		if !ok {
			t.Errorf("bpf/lib/syscall.h numbers %s, which this test does not know", name)
			continue
		}
		if nr != want {
			t.Errorf("%s: BPF watches %s as %d, Linux numbers it %d", runtime.GOARCH, name, nr, want)
		}
		if name == "connect" {
			continue
		}
		sends++
		if got := SyscallName(nr); got != name {
			t.Errorf("%s: BPF watches %s as %d, Go names %d %q", runtime.GOARCH, name, nr, nr, got)
		}
	}
	if sends != len(syscallNames) {
		t.Errorf("bpf/lib/syscall.h has %d send-family numbers for %s (%v), Go names %d", sends, arch, nums, len(syscallNames))
	}
}
