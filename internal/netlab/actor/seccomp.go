package main

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// auditArch is the seccomp_data.arch value of the architectures this
// binary is built for; the filter must check it because syscall numbers
// differ between ABIs.
var auditArch = map[string]uint32{
	"amd64":   unix.AUDIT_ARCH_X86_64,
	"arm64":   unix.AUDIT_ARCH_AARCH64,
	"386":     unix.AUDIT_ARCH_I386,
	"riscv64": unix.AUDIT_ARCH_RISCV64,
	"ppc64le": unix.AUDIT_ARCH_PPC64LE,
	"s390x":   unix.AUDIT_ARCH_S390X,
}

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jeq(k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: jt, Jf: jf, K: k}
}

// denySendto installs a seccomp filter on every thread of the process that
// makes sendto(fd, ...) fail with errno before it reaches the socket layer.
// That is the only way to get a real ECOMM from a TCP socket (no TCP/IP
// code returns it), and it is an error the stack-layer hooks never see.
// Every other syscall, and sendto on other fds, is allowed.
func denySendto(fd int, errno unix.Errno) error {
	arch, ok := auditArch[runtime.GOARCH]
	if !ok {
		return fmt.Errorf("no seccomp arch for %s", runtime.GOARCH)
	}
	// struct seccomp_data: int nr; __u32 arch; __u64 ip; __u64 args[6].
	const offNr, offArch, offArg0 = 0, 4, 16
	lo, hi := uint32(offArg0), uint32(offArg0+4)
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		lo, hi = hi, lo
	}
	allow := stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW)
	prog := []unix.SockFilter{
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
		jeq(arch, 1, 0),
		allow,
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr),
		jeq(uint32(unix.SYS_SENDTO), 1, 0),
		allow,
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, lo),
		jeq(uint32(fd), 1, 0),
		allow,
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, hi),
		jeq(0, 1, 0),
		allow,
		stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|(uint32(errno)&unix.SECCOMP_RET_DATA)),
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}

	// no_new_privs is per thread; TSYNC copies it, with the filter, to the
	// process's other threads, which matters because the Go runtime may run
	// the later sendto on any of them.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_NO_NEW_PRIVS: %w", err)
	}
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return fmt.Errorf("seccomp(SET_MODE_FILTER, TSYNC): %w", e)
	}
	if r != 0 {
		return fmt.Errorf("seccomp: thread %d could not be synchronised", r)
	}
	return nil
}
