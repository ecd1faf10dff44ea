package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
	"github.com/sendtrace/sendtrace/internal/testutil/timescale"
)

// Server modes:
//
//	reset    accept, then close with SO_LINGER {1, 0}: the peer gets a RST
//	sink     accept and never read, so the peer's send buffer fills
//	discard  accept and read everything until EOF or error
//	udp      bind a UDP socket and read datagrams
func serverMain(args []string) func(context.Context, *actorreport.Report) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	ctlDir = fs.String("ctl", "", "phase directory: write listening.ready")
	timeout = fs.Duration("timeout", timescale.Scale(120*time.Second), "exit after this long (default stretched by $"+timescale.Env+")")
	mode := fs.String("mode", "discard", "reset, sink, discard or udp")
	listen := fs.String("listen", "", "ADDR:PORT to listen on")
	exitAfter := fs.Int64("exit-after-bytes", 0, "exit once this many bytes were read in all; 0: run until signalled")
	rcvbuf := fs.Int("rcvbuf", 0, "SO_RCVBUF on the listener (inherited by accepted sockets); 0: kernel default")
	pauseBound := fs.Bool("pause-before-listen", false, "after bind, wait at phase \"bound\" before listen(): a tracer started then sees the listener opened")
	resetAfter := fs.Duration("reset-after", timescale.Scale(200*time.Millisecond), "reset mode: wait this long after accept, so a slow client's connect() returns before the reset (default stretched by $"+timescale.Env+")")
	_ = fs.Parse(args)

	return func(ctx context.Context, rep *actorreport.Report) error {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		rep.Mode = *mode
		ap, err := netip.ParseAddrPort(*listen)
		if err != nil {
			return fmt.Errorf("-listen: %w", err)
		}
		s := &server{mode: *mode, rep: rep, exitAfter: *exitAfter, resetAfter: *resetAfter, pauseBound: *pauseBound, full: make(chan struct{})}
		return s.run(ctx, ap, *rcvbuf)
	}
}

type server struct {
	mode       string
	exitAfter  int64
	resetAfter time.Duration
	pauseBound bool
	full       chan struct{} // closed once exitAfter bytes were read
	mu         sync.Mutex
	rep        *actorreport.Report
	read       int64
}

func (s *server) add(sock actorreport.Socket) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rep.Sockets = append(s.rep.Sockets, sock)
	return len(s.rep.Sockets) - 1
}

func (s *server) addRead(i int, n int) {
	s.mu.Lock()
	s.rep.Sockets[i].BytesRead += int64(n)
	before := s.read
	s.read += int64(n)
	if s.exitAfter > 0 && before < s.exitAfter && s.read >= s.exitAfter {
		close(s.full)
	}
	s.mu.Unlock()
}

func (s *server) run(ctx context.Context, ap netip.AddrPort, rcvbuf int) error {
	typ, proto, name := unix.SOCK_STREAM, unix.IPPROTO_TCP, "tcp"
	switch s.mode {
	case "reset", "sink", "discard":
	case "udp":
		typ, proto, name = unix.SOCK_DGRAM, unix.IPPROTO_UDP, "udp"
	default:
		return fmt.Errorf("-mode %q: want reset, sink, discard or udp", s.mode)
	}
	fd, err := unix.Socket(family(ap), typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if rcvbuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			return fmt.Errorf("SO_RCVBUF: %w", err)
		}
	}
	if err := unix.Bind(fd, sockaddr(ap)); err != nil {
		return fmt.Errorf("bind %v: %w", ap, err)
	}
	if s.pauseBound {
		if err := phase(ctx, "bound", true, nil); err != nil {
			return err
		}
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, 64); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	li := s.add(describe(fd, name))
	s.mu.Lock()
	listening := []actorreport.Socket{s.rep.Sockets[li]}
	s.mu.Unlock()
	if err := phase(ctx, "listening", false, listening); err != nil {
		return err
	}
	s.rep.StartMono = monoNow()

	// Blocking accept and read run on their own goroutines; closing the
	// listener would not reliably wake them, so the actor simply prints its
	// report and exits when ctx ends.
	done := make(chan error, 1)
	if typ == unix.SOCK_DGRAM {
		go func() { done <- s.readLoop(fd, li, false) }()
	} else {
		go func() { done <- s.acceptLoop(fd) }()
	}
	select {
	case <-ctx.Done():
		s.rep.EndMono = monoNow()
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("server timed out")
		}
		return nil
	case err := <-done:
		s.rep.EndMono = monoNow()
		return err
	case <-s.full:
		s.rep.EndMono = monoNow()
		return nil
	}
}

func (s *server) acceptLoop(lfd int) error {
	for {
		cfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		i := s.add(describe(cfd, "tcp"))
		switch s.mode {
		case "reset":
			if err := unix.SetsockoptLinger(cfd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
				return fmt.Errorf("SO_LINGER: %w", err)
			}
			// Reset from another goroutine so later accepts are not held up.
			go func() {
				time.Sleep(s.resetAfter)
				unix.Close(cfd)
			}()
		case "sink":
			// Kept open and never read until the process exits.
		case "discard":
			go func() {
				defer unix.Close(cfd)
				_ = s.readLoop(cfd, i, true)
			}()
		}
	}
}

// readLoop reads until EOF (stream) or an error. A zero-length datagram
// is not EOF.
func (s *server) readLoop(fd, i int, stream bool) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 && stream {
			return nil
		}
		s.addRead(i, n)
	}
}
