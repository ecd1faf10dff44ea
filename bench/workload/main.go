// Command workload generates the traffic the benchmark harness measures
// (go run ./bench). It speaks to the harness over its standard streams:
// after setting up it prints "ready PID" on stdout and waits for a line on
// stdin, so a tracer can attach to a process that exists but has not
// started its timed loop; when done it prints one JSON result line.
//
//	workload sink  [-cpu N]           accept on 127.0.0.1 and drain; prints "port N"
//	workload send  -port P -size B -duration D [-nodelay] [-cpu N]
//	workload storm -mode eagain|epipe -rate R -duration D
//	workload udpblast -port P -rate R -duration D   UDP to 127.0.0.1:P (for a drop storm)
//	workload hold  -n 10000           accept and hold connections; prints "port N"
//	workload many  -n 10000 -port P
//	workload idle                     a process to point --pid at
//
// Only loopback addresses are used.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: workload sink|send|storm|many|idle [flags]")
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "sink":
		err = sink(args)
	case "send":
		err = send(args)
	case "storm":
		err = storm(args)
	case "udpblast":
		err = udpBlast(args)
	case "many":
		err = many(args)
	case "hold":
		err = hold(args)
	case "idle":
		ready()
		waitLine()
	default:
		err = fmt.Errorf("unknown workload %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(1)
	}
}

var stdin = bufio.NewReader(os.Stdin)

func ready() { fmt.Printf("ready %d\n", os.Getpid()) }

// waitLine blocks until the harness writes a line or closes stdin.
func waitLine() { _, _ = stdin.ReadString('\n') }

func result(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Printf("%s\n", b)
	return err
}

// Result is what send and storm print when they finish.
type Result struct {
	Attempts uint64  `json:"attempts"`
	Failed   uint64  `json:"failed"`
	Errno    string  `json:"errno,omitempty"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"rate"` // attempts per second
}

// sink accepts connections on loopback and reads everything sent to them.
func sink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	cpu := fs.Int("cpu", -1, "run on this CPU only (-1: anywhere)")
	_ = fs.Parse(args)
	if err := pin(*cpu); err != nil {
		return err
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	go func() {
		waitLine()
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			buf := make([]byte, 256<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					c.Close()
					return
				}
			}
		}()
	}
}

// pin keeps every thread of this process on one CPU. Threads the Go
// runtime starts later inherit the mask from the thread that starts them.
func pin(cpu int) error {
	if cpu < 0 {
		return nil
	}
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pin to CPU %d: %w", cpu, err)
		}
	}
	return nil
}

func loopback(port int) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
}

// dial opens a blocking TCP socket to 127.0.0.1:port. The socket is used
// with raw system calls, outside Go's poller, so that a full send buffer
// blocks in the kernel instead of returning EAGAIN (which a tracer of
// failed sends would count).
func dial(port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, loopback(port)); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// send is the success path: one thread sends fixed-size messages with
// sendto(2) on a blocking socket as fast as it can for a fixed time.
// sendto is in strace's %network class, so strace -e trace=%network
// stops on every call, as it would for a real send-heavy server.
func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	port := fs.Int("port", 0, "sink port on 127.0.0.1")
	size := fs.Int("size", 64, "bytes per send")
	dur := fs.Duration("duration", 2*time.Second, "how long to send")
	nodelay := fs.Bool("nodelay", false, "set TCP_NODELAY: every send leaves as its own segment")
	cpu := fs.Int("cpu", -1, "run on this CPU only (-1: anywhere)")
	_ = fs.Parse(args)
	if err := pin(*cpu); err != nil {
		return err
	}
	fd, err := dial(*port)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if *nodelay {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return fmt.Errorf("TCP_NODELAY: %w", err)
		}
	}
	buf := make([]byte, *size)
	ready()
	waitLine()

	var n uint64
	start := time.Now()
	end := start.Add(*dur)
	for {
		for i := 0; i < 256; i++ {
			if err := unix.Sendto(fd, buf, 0, nil); err != nil {
				return fmt.Errorf("send: %w", err)
			}
		}
		n += 256
		if time.Now().After(end) {
			break
		}
	}
	secs := time.Since(start).Seconds()
	return result(Result{Attempts: n, Seconds: secs, Rate: float64(n) / secs})
}

// storm is the failure path: sends that fail at once, at a given rate
// (0: as fast as the kernel fails them).
//
//	eagain: a non-blocking socket whose send buffer, and the peer's
//	        receive buffer, are full; the peer never reads.
//	epipe:  a socket shut down for writing; MSG_NOSIGNAL, so no SIGPIPE.
func storm(args []string) error {
	fs := flag.NewFlagSet("storm", flag.ExitOnError)
	mode := fs.String("mode", "eagain", "eagain or epipe")
	rate := fs.Float64("rate", 0, "failed sends per second; 0: unlimited")
	dur := fs.Duration("duration", 2*time.Second, "how long to fail")
	host := fs.String("host", "127.0.0.1", "loopback address to fail towards (any of 127.0.0.0/8), so a tracer can filter on it")
	_ = fs.Parse(args)
	ip := net.ParseIP(*host).To4()
	if ip == nil || ip[0] != 127 {
		return fmt.Errorf("-host %q: give an address in 127.0.0.0/8", *host)
	}

	ln, err := net.Listen("tcp4", net.JoinHostPort(*host, "0"))
	if err != nil {
		return err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// Small buffers fill at once.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: ln.Addr().(*net.TCPAddr).Port, Addr: [4]byte(ip)}); err != nil {
		return err
	}
	peer := <-accepted
	defer peer.Close()

	buf := make([]byte, 64)
	var want unix.Errno
	switch *mode {
	case "eagain":
		want = unix.EAGAIN
		if err := unix.SetNonblock(fd, true); err != nil {
			return err
		}
		big := make([]byte, 64<<10)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := unix.Write(fd, big)
			if errors.Is(err, unix.EAGAIN) {
				// The peer may still be acknowledging; make sure the
				// buffer stays full.
				time.Sleep(50 * time.Millisecond)
				if _, err := unix.Write(fd, big); errors.Is(err, unix.EAGAIN) {
					break
				}
			} else if err != nil {
				return fmt.Errorf("fill: %w", err)
			}
			if time.Now().After(deadline) {
				return errors.New("fill: the send buffer never filled")
			}
		}
	case "epipe":
		want = unix.EPIPE
		if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown mode %q", *mode)
	}
	ready()
	waitLine()

	r, err := paced(*rate, *dur, 64, func() (bool, error) {
		err := unix.Sendto(fd, buf, unix.MSG_NOSIGNAL, nil)
		if err != nil && err != want {
			return false, fmt.Errorf("send: unexpected %w", err)
		}
		return err == want, nil
	})
	r.Errno = *mode
	if err != nil {
		return err
	}
	return result(r)
}

// paced calls send in batches until dur has passed, keeping to rate calls
// per second (0: as fast as it can) by sleeping when ahead of schedule,
// which leaves the CPU to the consumer. send reports whether the call
// failed as the workload intends; an error ends the loop.
func paced(rate float64, dur time.Duration, batch int, send func() (bool, error)) (Result, error) {
	var attempts, failed uint64
	start := time.Now()
	end := start.Add(dur)
	for {
		for i := 0; i < batch; i++ {
			f, err := send()
			if err != nil {
				return Result{}, err
			}
			if f {
				failed++
			}
		}
		attempts += uint64(batch)
		now := time.Now()
		if now.After(end) {
			break
		}
		if rate > 0 {
			due := start.Add(time.Duration(float64(attempts) / rate * 1e9))
			if d := due.Sub(now); d > 200*time.Microsecond {
				time.Sleep(d)
			}
		}
	}
	secs := time.Since(start).Seconds()
	return Result{Attempts: attempts, Failed: failed, Seconds: secs, Rate: float64(attempts) / secs}, nil
}

// hold accepts loopback connections and keeps them open, without
// reading, until told to go; it prints "port N" first. It is the far end
// of many, in a process of its own so each side needs only n descriptors.
func hold(args []string) error {
	fs := flag.NewFlagSet("hold", flag.ExitOnError)
	n := fs.Int("n", 10000, "connections to expect")
	_ = fs.Parse(args)
	if err := raiseNoFile(uint64(*n + 256)); err != nil {
		return err
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	var cs []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cs = append(cs, c)
		}
	}()
	waitLine()
	ln.Close()
	return nil
}

// raiseNoFile raises the soft open-file limit to at least n, up to the
// hard limit.
func raiseNoFile(n uint64) error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Cur >= n {
		return nil
	}
	if rl.Max < n {
		return fmt.Errorf("need %d open files, the hard limit is %d", n, rl.Max)
	}
	rl.Cur = n
	return unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
}

// many opens n connections to a hold process on loopback, makes one send
// fail on each (EPIPE after shutdown), prints a result, then holds every
// socket open until told to go.
func many(args []string) error {
	fs := flag.NewFlagSet("many", flag.ExitOnError)
	n := fs.Int("n", 10000, "connections")
	port := fs.Int("port", 0, "port of a hold process on 127.0.0.1")
	_ = fs.Parse(args)
	if err := raiseNoFile(uint64(*n + 256)); err != nil {
		return err
	}
	ready()
	waitLine()

	start := time.Now()
	fds := make([]int, 0, *n)
	for i := 0; i < *n; i++ {
		fd, err := dial(*port)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		fds = append(fds, fd)
	}
	var failed uint64
	buf := make([]byte, 64)
	for _, fd := range fds {
		if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
			return err
		}
		if err := unix.Sendto(fd, buf, unix.MSG_NOSIGNAL, nil); err == unix.EPIPE {
			failed++
		}
	}
	secs := time.Since(start).Seconds()
	if err := result(Result{Attempts: uint64(len(fds)), Failed: failed, Errno: "epipe", Seconds: secs}); err != nil {
		return err
	}
	waitLine()
	for _, fd := range fds {
		unix.Close(fd)
	}
	_, _ = io.WriteString(os.Stdout, "closed\n")
	return nil
}

// udpBlast sends 64-byte datagrams to 127.0.0.1:port at a paced rate. Run
// in a network namespace whose loopback qdisc drops almost everything, it
// is a drop storm: the sends succeed, the kernel drops the packets.
func udpBlast(args []string) error {
	fs := flag.NewFlagSet("udpblast", flag.ExitOnError)
	port := fs.Int("port", 9, "destination port on 127.0.0.1")
	rate := fs.Float64("rate", 100000, "datagrams per second; 0: unlimited")
	dur := fs.Duration("duration", 2*time.Second, "how long to send")
	_ = fs.Parse(args)

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, loopback(*port)); err != nil {
		return err
	}
	ready()
	waitLine()

	buf := make([]byte, 64)
	r, err := paced(*rate, *dur, 16, func() (bool, error) {
		return unix.Sendto(fd, buf, 0, nil) != nil, nil
	})
	if err != nil {
		return err
	}
	return result(r)
}
