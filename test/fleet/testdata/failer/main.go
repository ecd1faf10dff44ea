// Command failer fails one send (EPIPE, on a TCP socket never connected)
// and exits at once: the short-lived process of a transient unit.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "failer: socket:", err)
		os.Exit(1)
	}
	if err := syscall.Sendto(fd, []byte("x"), syscall.MSG_NOSIGNAL, nil); err != syscall.EPIPE {
		fmt.Fprintln(os.Stderr, "failer: a send on an unconnected socket gave", err, "not EPIPE")
		os.Exit(1)
	}
}
