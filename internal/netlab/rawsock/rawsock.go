// Package rawsock holds the socket calls the lab's programs make with raw
// system calls, where Go's runtime would otherwise hide the errno.
package rawsock

import (
	"time"

	"golang.org/x/sys/unix"
)

// Connect connects a blocking socket, giving up after timeout. A blocking
// connect with a send timeout is not restarted after a signal, and Go's
// runtime signals its threads for preemption: on EINTR the attempt goes on
// in the kernel, so wait for it instead of reporting EINTR.
func Connect(fd int, sa unix.Sockaddr, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return err
	}
	err := unix.Connect(fd, sa)
	for err == unix.EINTR || err == unix.EALREADY {
		left := time.Until(deadline)
		if left <= 0 {
			return unix.ETIMEDOUT
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if _, perr := unix.Poll(fds, int(left/time.Millisecond)+1); perr != nil && perr != unix.EINTR {
			return perr
		}
		// Asking again reports the outcome: EISCONN once connected, the
		// attempt's error once it failed, EALREADY while it goes on.
		err = unix.Connect(fd, sa)
	}
	if err == unix.EISCONN {
		err = nil
	}
	// Later sends block (or not) only as the caller chooses.
	tv = unix.Timeval{}
	if serr := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err == nil {
		err = serr
	}
	return err
}
