// Command guestcheck is the VM harness's self-test. Run inside a vmtest
// guest, it checks what sendtrace's tests rely on: the kernel's BTF (or the
// copy given with -btf when the sysfs file is hidden), network namespaces
// with veth and nftables, and bpf() ring buffer maps. Build it static:
//
//	CGO_ENABLED=0 go build -o guestcheck ./vmtest/guestcheck
//
// It only uses addresses on 198.18.0.0/15 and fd00::/8, inside two network
// namespaces it creates and deletes.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

var failed int

func check(name string, fn func() (string, error)) {
	detail, err := fn()
	if err != nil {
		failed++
		fmt.Printf("FAIL %-10s %v\n", name, err)
		return
	}
	fmt.Printf("ok   %-10s %s\n", name, detail)
}

func main() {
	btfFile := flag.String("btf", "", "expect /sys/kernel/btf/vmlinux to be hidden (empty) and load the kernel BTF from this file instead")
	skipNet := flag.Bool("no-net", false, "skip the namespace, veth and nftables check")
	flag.Parse()

	check("kernel", func() (string, error) {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return "", err
		}
		return unix.ByteSliceToString(u.Release[:]), nil
	})
	check("tracefs", func() (string, error) {
		b, err := os.ReadFile("/proc/mounts")
		if err != nil {
			return "", err
		}
		if bytes.Contains(b, []byte(" tracefs ")) {
			return "", errors.New("tracefs is mounted; the guest should not mount it")
		}
		return "not mounted", nil
	})
	if *btfFile == "" {
		check("btf", checkSysfsBTF)
	} else {
		check("btf", func() (string, error) { return checkHiddenBTF(*btfFile) })
	}
	check("ringbuf", checkRingbuf)
	if !*skipNet {
		check("netns", checkNetwork)
	}
	if failed > 0 {
		fmt.Printf("guestcheck: %d checks failed\n", failed)
		os.Exit(1)
	}
	fmt.Println("guestcheck: all checks passed")
}

func checkSysfsBTF() (string, error) {
	st, err := os.Stat("/sys/kernel/btf/vmlinux")
	if err != nil {
		return "", err
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return "", fmt.Errorf("parse /sys/kernel/btf/vmlinux: %w", err)
	}
	var sock *btf.Struct
	if err := spec.TypeByName("sock", &sock); err != nil {
		return "", err
	}
	return fmt.Sprintf("/sys/kernel/btf/vmlinux %d bytes, struct sock %d bytes", st.Size(), sock.Size), nil
}

func checkHiddenBTF(file string) (string, error) {
	b, err := os.ReadFile("/sys/kernel/btf/vmlinux")
	if err == nil && len(b) > 0 {
		return "", fmt.Errorf("/sys/kernel/btf/vmlinux is not hidden (%d bytes)", len(b))
	}
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	spec, err := btf.LoadSpecFromReader(f)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", file, err)
	}
	var sock *btf.Struct
	if err := spec.TypeByName("sock", &sock); err != nil {
		return "", err
	}
	return fmt.Sprintf("sysfs file hidden; %s parsed, struct sock %d bytes", file, sock.Size), nil
}

func checkRingbuf() (string, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return "", err
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "gc_rb", Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	if err != nil {
		return "", fmt.Errorf("create ring buffer map: %w", err)
	}
	defer m.Close()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SocketFilter,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return "", fmt.Errorf("load a trivial program: %w", err)
	}
	defer p.Close()
	return "ring buffer map (64 KiB) created; socket filter loaded", nil
}

func run(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

const ruleset = `table inet guestcheck {
	chain input {
		type filter hook input priority 0; policy accept;
		ct state established,related counter accept
		tcp dport 9 counter reject with tcp reset
		icmp type echo-request counter accept
	}
}
`

func checkNetwork() (string, error) {
	a := fmt.Sprintf("gcA%d", os.Getpid())
	b := fmt.Sprintf("gcB%d", os.Getpid())
	for _, ns := range []string{a, b} {
		if _, err := run("ip", "netns", "add", ns); err != nil {
			return "", err
		}
		defer run("ip", "netns", "del", ns)
	}
	steps := [][]string{
		{"ip", "link", "add", "gcva", "netns", a, "type", "veth", "peer", "name", "gcvb", "netns", b},
		{"ip", "-n", a, "addr", "add", "198.18.0.1/24", "dev", "gcva"},
		{"ip", "-n", b, "addr", "add", "198.18.0.2/24", "dev", "gcvb"},
		{"ip", "-n", a, "addr", "add", "fd00:5e::1/64", "dev", "gcva", "nodad"},
		{"ip", "-n", b, "addr", "add", "fd00:5e::2/64", "dev", "gcvb", "nodad"},
		{"ip", "-n", a, "link", "set", "lo", "up"},
		{"ip", "-n", b, "link", "set", "lo", "up"},
		{"ip", "-n", a, "link", "set", "gcva", "up"},
		{"ip", "-n", b, "link", "set", "gcvb", "up"},
	}
	for _, s := range steps {
		if _, err := run(s...); err != nil {
			return "", err
		}
	}
	rules, err := os.CreateTemp("", "guestcheck-*.nft")
	if err != nil {
		return "", err
	}
	defer os.Remove(rules.Name())
	rules.WriteString(ruleset)
	rules.Close()
	if _, err := run("ip", "netns", "exec", b, "nft", "-f", rules.Name()); err != nil {
		return "", err
	}
	if _, err := run("ip", "netns", "exec", a, "ping", "-c", "3", "-W", "2", "198.18.0.2"); err != nil {
		return "", err
	}
	// nft rejects TCP port 9 with a reset: connect must fail at once
	// with ECONNREFUSED, for IPv4 and for IPv6.
	for _, dst := range []unix.Sockaddr{
		&unix.SockaddrInet4{Port: 9, Addr: [4]byte{198, 18, 0, 2}},
		&unix.SockaddrInet6{Port: 9, Addr: [16]byte{0xfd, 0, 0, 0x5e, 15: 2}},
	} {
		if err := connectIn(a, dst); !errors.Is(err, unix.ECONNREFUSED) {
			return "", fmt.Errorf("connect to %v port 9: got %v, want ECONNREFUSED from the nft reject rule", dst, err)
		}
	}
	out, err := run("ip", "netns", "exec", b, "nft", "list", "table", "inet", "guestcheck")
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`tcp dport 9 counter packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no reject counter in:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[1]); n < 2 {
		return "", fmt.Errorf("reject counter is %d, want 2", n)
	}
	icmp := regexp.MustCompile(`icmp type echo-request counter packets (\d+)`).FindStringSubmatch(out)
	if icmp == nil || icmp[1] == "0" {
		return "", fmt.Errorf("echo-request counter did not count the pings:\n%s", out)
	}
	return fmt.Sprintf("veth %s<->%s: ping ok (%s echo-requests counted), nft reset %s connects (IPv4+IPv6)", a, b, icmp[1], m[1]), nil
}

// connectIn makes one blocking TCP connect from network namespace ns.
func connectIn(ns string, dst unix.Sockaddr) error {
	res := make(chan error, 1)
	go func() {
		// The thread is never unlocked, so it exits with the goroutine
		// and no other goroutine runs in the namespace.
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			res <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			res <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		family := unix.AF_INET
		if _, ok := dst.(*unix.SockaddrInet6); ok {
			family = unix.AF_INET6
		}
		s, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			res <- err
			return
		}
		defer unix.Close(s)
		unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: 5})
		res <- unix.Connect(s, dst)
	}()
	return <-res
}
