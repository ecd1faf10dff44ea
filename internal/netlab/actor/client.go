package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
	"github.com/sendtrace/sendtrace/internal/netlab/rawsock"
	"github.com/sendtrace/sendtrace/internal/testutil/timescale"
)

type clientOpts struct {
	to             netip.AddrPort
	proto          string
	size           int
	count          int
	interval       time.Duration
	untilError     bool
	awaitBefore    int
	awaitTimeout   time.Duration
	nonblock       bool
	sndbuf         int
	syscall        string
	pmtuDo         bool
	recvErr        bool
	seccompECOMM   bool
	pauseConnected bool
	pauseSent      bool
	unconnected    bool
	hold           time.Duration
}

func clientMain(args []string) func(context.Context, *actorreport.Report) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	ctlDir = fs.String("ctl", "", "phase directory: write NAME.ready, wait for NAME.go")
	timeout = fs.Duration("timeout", timescale.Scale(60*time.Second), "give up this long after phase start is released (default stretched by $"+timescale.Env+")")
	var o clientOpts
	to := fs.String("to", "", "destination ADDR:PORT")
	fs.StringVar(&o.proto, "proto", "tcp", "tcp or udp")
	fs.IntVar(&o.size, "size", 100, "bytes per send")
	fs.IntVar(&o.count, "count", 1, "sends to make; 0: no limit (use -until-error)")
	fs.DurationVar(&o.interval, "interval", 0, "pause between sends")
	fs.BoolVar(&o.untilError, "until-error", false, "stop after the first failed send")
	fs.IntVar(&o.awaitBefore, "await-error-before", 0, "before send number N (1-based), wait until the kernel flags an error on the socket")
	fs.DurationVar(&o.awaitTimeout, "await-timeout", timescale.Scale(10*time.Second), "bound for -await-error-before (default stretched by $"+timescale.Env+")")
	fs.BoolVar(&o.nonblock, "nonblock", false, "make the socket non-blocking after connect")
	fs.IntVar(&o.sndbuf, "sndbuf", 0, "SO_SNDBUF before connect; 0: kernel default")
	fs.StringVar(&o.syscall, "syscall", "sendto", "sendto, write, writev, sendmsg or sendmmsg")
	fs.BoolVar(&o.pmtuDo, "pmtu-do", false, "set IP_MTU_DISCOVER (IPV6_MTU_DISCOVER) to PMTUDISC_DO: never fragment locally")
	fs.BoolVar(&o.recvErr, "recverr", false, "set IP_RECVERR (IPV6_RECVERR): report every ICMP error, not only the ones the kernel deems fatal")
	fs.BoolVar(&o.seccompECOMM, "seccomp-ecomm", false, "after connect, make sendto on this socket fail with ECOMM through a seccomp filter")
	fs.BoolVar(&o.pauseConnected, "pause-connected", false, "stop at phase \"connected\" after connect")
	fs.BoolVar(&o.pauseSent, "pause-sent", false, "stop at phase \"sent\" after the last send, its results in the phase: the process and its cgroup stay until the test has read what it needs")
	fs.BoolVar(&o.unconnected, "unconnected", false, "UDP only: never connect; each send names -to in its arguments (sendto, sendmsg, sendmmsg)")
	fs.DurationVar(&o.hold, "hold", 0, "keep the socket open this long after the last send")
	_ = fs.Parse(args)

	return func(ctx context.Context, rep *actorreport.Report) error {
		rep.Mode = o.proto
		ap, err := netip.ParseAddrPort(*to)
		if err != nil {
			return fmt.Errorf("-to: %w", err)
		}
		o.to = ap
		switch o.syscall {
		case "sendto", "write", "writev", "sendmsg", "sendmmsg":
		default:
			return fmt.Errorf("-syscall %q: want sendto, write, writev, sendmsg or sendmmsg", o.syscall)
		}
		if o.unconnected && (o.proto != "udp" || o.syscall == "write" || o.syscall == "writev") {
			return errors.New("-unconnected needs -proto udp and a syscall that takes an address (sendto, sendmsg, sendmmsg)")
		}
		if o.seccompECOMM && o.syscall != "sendto" {
			return errors.New("-seccomp-ecomm filters sendto only")
		}
		// The socket must not exist before "start" is released: a tracer
		// started then sees the connect, so it knows the socket's owner
		// before any asynchronous event arrives.
		// Parked there, it waits for as long as the test takes to start a
		// tracer (slow under emulation); the test's own deadline and its
		// clean-up bound that wait, and -timeout bounds the rest.
		if err := phase(ctx, "start", true, nil); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		rep.StartMono = monoNow()
		defer func() { rep.EndMono = monoNow() }()
		return runClient(ctx, o, rep)
	}
}

func runClient(ctx context.Context, o clientOpts, rep *actorreport.Report) error {
	typ, proto := unix.SOCK_STREAM, unix.IPPROTO_TCP
	if o.proto == "udp" {
		typ, proto = unix.SOCK_DGRAM, unix.IPPROTO_UDP
	} else if o.proto != "tcp" {
		return fmt.Errorf("-proto %q: want tcp or udp", o.proto)
	}
	fd, err := unix.Socket(family(o.to), typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	// Asking for the cookie makes the kernel give the socket one now, so
	// that every event of the connection carries it, the handshake's too,
	// on kernels whose tracing programs can only read it (before 5.12).
	_, _ = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if o.sndbuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, o.sndbuf); err != nil {
			return fmt.Errorf("SO_SNDBUF: %w", err)
		}
	}
	if o.pmtuDo {
		if o.to.Addr().Is4() {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
		} else {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO)
		}
		if err != nil {
			return fmt.Errorf("MTU_DISCOVER: %w", err)
		}
	}
	if o.recvErr {
		if o.to.Addr().Is4() {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		} else {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		}
		if err != nil {
			return fmt.Errorf("RECVERR: %w", err)
		}
	}
	var sendTo netip.AddrPort
	if o.unconnected {
		sendTo = o.to
	} else if err := connect(ctx, fd, o.to); err != nil {
		return err
	}
	rep.Sockets = []actorreport.Socket{describe(fd, o.proto)}
	sock := &rep.Sockets[0]
	if sock.Remote == "" {
		// A reset can beat getpeername; the socket was connected to o.to.
		// An unconnected socket has no peer: its sends go to o.to.
		sock.Remote = o.to.String()
	}
	if o.unconnected {
		// The first send binds the socket to a port; the tracer sees it
		// bound, so the report does too.
		defer func() { sock.Local = describe(fd, o.proto).Local }()
	}
	if o.nonblock {
		if err := unix.SetNonblock(fd, true); err != nil {
			return fmt.Errorf("O_NONBLOCK: %w", err)
		}
	}
	if o.seccompECOMM {
		if err := denySendto(fd, unix.ECOMM); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	if o.pauseConnected {
		if err := phase(ctx, "connected", true, rep.Sockets); err != nil {
			return err
		}
	}

	buf := make([]byte, o.size)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	for i := 1; o.count == 0 || i <= o.count; i++ {
		if i == o.awaitBefore {
			rev, err := awaitError(fd, o.awaitTimeout)
			if err != nil {
				return err
			}
			sock.AwaitedError = rev
		} else if i > 1 && o.interval > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(o.interval):
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopped after %d sends: %w", i-1, ctx.Err())
		}
		s := send(fd, o.syscall, buf, sendTo)
		sock.Sends = append(sock.Sends, s)
		if s.Errno != 0 && o.untilError {
			break
		}
	}
	if o.pauseSent {
		if err := phase(ctx, "sent", true, rep.Sockets); err != nil {
			return err
		}
	}
	if o.hold > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(o.hold):
		}
	}
	return nil
}

// connect is blocking, but bounded by ctx so a lab that drops the SYN
// cannot hang the actor.
func connect(ctx context.Context, fd int, to netip.AddrPort) error {
	d := timescale.Scale(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		d = max(time.Until(dl), time.Millisecond)
	}
	if err := rawsock.Connect(fd, sockaddr(to), d); err != nil {
		return fmt.Errorf("connect %v: %w", to, err)
	}
	return nil
}
