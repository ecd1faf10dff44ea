package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
)

func monoNow() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func addrPort(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return ""
}

func family(ap netip.AddrPort) int {
	if ap.Addr().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// describe fills in what the kernel says about fd now. It must run while
// the socket is still connected: getpeername fails after a reset.
func describe(fd int, proto string) actorreport.Socket {
	s := actorreport.Socket{FD: fd, Proto: proto}
	s.Cookie, _ = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if sa, err := unix.Getsockname(fd); err == nil {
		s.Local = addrPort(sa)
	}
	if sa, err := unix.Getpeername(fd); err == nil {
		s.Remote = addrPort(sa)
	}
	return s
}

func errnoOf(err error) int {
	if e, ok := err.(syscall.Errno); ok {
		return int(e)
	}
	return -1
}

// send makes exactly one send-family syscall, to the socket's peer or, when
// to is valid (an unconnected UDP socket), to that address. The raw syscall
// is used so the Go runtime neither retries on EAGAIN nor picks the syscall
// itself: the tracer is checked against the syscall named here, with the
// size and destination found in its arguments.
func send(fd int, sc string, buf []byte, to netip.AddrPort) actorreport.Send {
	s := actorreport.Send{Syscall: sc, Size: len(buf), Time: time.Now()}
	var p unsafe.Pointer
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	name, namelen := rawSockaddr(to)
	// writev and sendmsg split the buffer in two, so the size the tracer
	// reports must be the sum of the iovecs, not the first one.
	half := len(buf) / 2
	iov := []unix.Iovec{{Base: (*byte)(p)}, {}}
	iov[0].SetLen(half)
	if len(buf) > half {
		iov[1].Base = &buf[half]
		iov[1].SetLen(len(buf) - half)
	}
	msg := unix.Msghdr{Name: (*byte)(name), Namelen: namelen, Iov: &iov[0]}
	msg.SetIovlen(len(iov))
	var n uintptr
	var errno syscall.Errno
	s.MonoBefore = monoNow()
	switch sc {
	case "write":
		n, _, errno = unix.Syscall(unix.SYS_WRITE, uintptr(fd), uintptr(p), uintptr(len(buf)))
	case "writev":
		n, _, errno = unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	case "sendmsg":
		n, _, errno = unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_NOSIGNAL)
	case "sendmmsg":
		// One message: the call fails with its errno when it is not sent.
		mm := []unix.Mmsghdr{{Hdr: msg}}
		n, _, errno = unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&mm[0])), 1, unix.MSG_NOSIGNAL, 0, 0)
		runtime.KeepAlive(mm)
	default: // sendto
		n, _, errno = unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(buf)), unix.MSG_NOSIGNAL,
			uintptr(name), uintptr(namelen))
	}
	s.MonoAfter = monoNow()
	runtime.KeepAlive(buf)
	runtime.KeepAlive(iov)
	runtime.KeepAlive(name)
	if errno != 0 {
		s.N = -1
		s.Errno = int(errno)
		s.ErrnoName = unix.ErrnoName(errno)
	} else {
		s.N = int(n)
	}
	return s
}

// rawSockaddr is the sockaddr_in or sockaddr_in6 for ap, as the kernel
// reads it from a syscall's arguments; nil when ap is not valid.
func rawSockaddr(ap netip.AddrPort) (unsafe.Pointer, uint32) {
	if !ap.IsValid() {
		return nil, 0
	}
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], ap.Port())
	if ap.Addr().Is4() {
		sa := &unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ap.Addr().As4()}
		sa.Port = *(*uint16)(unsafe.Pointer(&port))
		return unsafe.Pointer(sa), unix.SizeofSockaddrInet4
	}
	sa := &unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ap.Addr().As16()}
	sa.Port = *(*uint16)(unsafe.Pointer(&port))
	return unsafe.Pointer(sa), unix.SizeofSockaddrInet6
}

// awaitError waits until the kernel flags an error on fd (POLLERR or
// POLLHUP: a reset, or an ICMP error on a connected UDP socket) without
// consuming it, so the next send is the one that reports it.
func awaitError(fd int, d time.Duration) (int, error) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, fmt.Errorf("no error flagged on fd %d within %v", fd, d)
		}
		// Only error bits are asked for; poll reports them regardless.
		pfd := []unix.PollFd{{Fd: int32(fd)}}
		n, err := unix.Poll(pfd, int(min(left, 100*time.Millisecond)/time.Millisecond)+1)
		if err != nil && err != unix.EINTR {
			return 0, err
		}
		if n > 0 && pfd[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			return int(pfd[0].Revents), nil
		}
	}
}
