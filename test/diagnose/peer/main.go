// Command peer plays the request/response client and server of the
// diagnosis tests: pooled connections that idle, bulk uploads, writes after
// shutdown and reconnect loops. It uses raw syscalls so each errno is
// exactly what the kernel returned, and prints one JSON result on stdout.
//
//	peer server -listen ADDR:PORT [-tick D]
//	peer client -to ADDR:PORT -mode idle|shutdown|storm|pmtu|bulk [options]
//	peer upload -listen ADDR:PORT
//	peer http -url URL [-count N] [-idle D] [-put BYTES] [-rate R] [-timeout D]
//
// upload is an HTTP server (Go's net/http) that reads each request's body
// to the end and answers 200; like most servers, it answers a client's
// "Expect: 100-continue" before reading, the only data it sends until the
// body is in.
//
// http is a pooled Go net/http client: -count requests on one kept-alive
// connection, -idle apart, each a GET, or a PUT of -put bytes at -rate
// bytes/s; it stops at the first error and records its errno.
//
// A client waits for the file given by -go before it creates a socket, so
// a tracer started against its pid sees the connection from the start.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab/rawsock"
	"golang.org/x/sys/unix"
)

type result struct {
	PID     int      `json:"pid"`
	Cookies []uint64 `json:"cookies"`
	Errnos  []string `json:"errnos"`
	Sends   int      `json:"sends"`
	Error   string   `json:"error,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peer server|client [flags]")
		os.Exit(2)
	}
	var err error
	res := &result{PID: os.Getpid()}
	switch os.Args[1] {
	case "server":
		err = server(os.Args[2:])
	case "client":
		err = client(os.Args[2:], res)
	case "upload":
		err = upload(os.Args[2:])
	case "http":
		err = httpClient(os.Args[2:], res)
	default:
		err = fmt.Errorf("unknown role %q", os.Args[1])
	}
	if err != nil {
		res.Error = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func family(ap netip.AddrPort) int {
	if ap.Addr().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// server answers every read with a short reply and, with -tick, also
// sends a few bytes every tick, as a server pushing heartbeats does.
func server(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	listen := fs.String("listen", "", "ADDR:PORT")
	tick := fs.Duration("tick", 0, "send 8 bytes to each client this often; 0: never")
	life := fs.Duration("timeout", 120*time.Second, "exit after this long")
	_ = fs.Parse(args)
	ap, err := netip.ParseAddrPort(*listen)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(family(ap), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, sockaddr(ap)); err != nil {
		return err
	}
	if err := unix.Listen(fd, 128); err != nil {
		return err
	}
	if err := os.WriteFile(os.Getenv("PEER_READY"), nil, 0o644); err != nil && os.Getenv("PEER_READY") != "" {
		return err
	}
	go func() {
		time.Sleep(*life)
		os.Exit(0)
	}()
	for {
		cfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err != nil {
			if err == unix.EINTR || err == unix.ECONNABORTED {
				continue
			}
			return err
		}
		if *tick > 0 {
			go func() {
				for {
					time.Sleep(*tick)
					if _, err := unix.Write(cfd, []byte("tick....")); err != nil {
						return
					}
				}
			}()
		}
		go func() {
			defer unix.Close(cfd)
			buf := make([]byte, 64<<10)
			for {
				n, err := unix.Read(cfd, buf)
				if err == unix.EINTR {
					continue
				}
				if err != nil || n == 0 {
					return
				}
				if *tick == 0 {
					_, _ = unix.Write(cfd, []byte("ok"))
				}
			}
		}()
	}
}

func upload(args []string) error {
	fs := flag.NewFlagSet("upload", flag.ExitOnError)
	listen := fs.String("listen", "", "ADDR:PORT")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if err := os.WriteFile(os.Getenv("PEER_READY"), nil, 0o644); err != nil && os.Getenv("PEER_READY") != "" {
		return err
	}
	return http.Serve(ln, http.HandlerFunc(serveHTTP))
}

// serveHTTP reads each request's body to the end and answers "ok", but
// for three paths: /bytes?n=N&rate=R sends N bytes at R bytes/s (0: as
// fast as it can), /sleep?d=D answers after D, and /reset resets the
// connection (SO_LINGER 0) instead of answering (with ?after=N, after
// the first N bytes of a longer body).
func serveHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return
	}
	q := r.URL.Query()
	switch r.URL.Path {
	case "/bytes":
		n, _ := strconv.Atoi(q.Get("n"))
		rate, _ := strconv.Atoi(q.Get("rate"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		chunk := make([]byte, 16<<10)
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
			if rate > 0 {
				time.Sleep(time.Duration(k) * time.Second / time.Duration(rate))
			}
		}
		return
	case "/sleep":
		d, _ := time.ParseDuration(q.Get("d"))
		time.Sleep(d)
	case "/reset":
		// ?after=N: the response's header and N bytes of its body first.
		after, _ := strconv.Atoi(q.Get("after"))
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			if after > 0 {
				_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 2*after)
				_, _ = c.Write(make([]byte, after))
				time.Sleep(100 * time.Millisecond)
			}
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
		}
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

type clientOpts struct {
	to        netip.AddrPort
	mode      string
	idle      time.Duration
	keepalive time.Duration
	count     int
	interval  time.Duration
	bulk      int
	limit     time.Duration
}

func client(args []string, res *result) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	to := fs.String("to", "", "ADDR:PORT")
	goFile := fs.String("go", "", "wait for this file before starting")
	var o clientOpts
	fs.StringVar(&o.mode, "mode", "idle", "idle, shutdown, storm, pmtu or bulk")
	fs.DurationVar(&o.idle, "idle", 0, "idle mode: stay silent this long before the next request")
	fs.DurationVar(&o.keepalive, "keepalive", 0, "TCP_KEEPIDLE and TCP_KEEPINTVL; 0: no keepalive")
	fs.IntVar(&o.count, "count", 20, "requests after the idle (idle), connections (storm)")
	fs.DurationVar(&o.interval, "interval", 200*time.Millisecond, "pause between requests or connections")
	fs.IntVar(&o.bulk, "bulk", 20000, "pmtu, bulk: bytes of the large write")
	fs.DurationVar(&o.limit, "limit", 30*time.Second, "give up after this long")
	_ = fs.Parse(args)
	ap, err := netip.ParseAddrPort(*to)
	if err != nil {
		return err
	}
	o.to = ap
	if *goFile != "" {
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := os.Stat(*goFile); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("no go file")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(o.limit)
	if o.mode == "storm" {
		for i := 0; i < o.count && time.Now().Before(deadline); i++ {
			fd, err := dial(o, res)
			if err == nil {
				unix.Close(fd)
			}
			time.Sleep(o.interval)
		}
		return nil
	}
	fd, err := dial(o, res)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	req := make([]byte, 100)
	send := func(b []byte) bool {
		res.Sends++
		_, err := unix.SendmsgN(fd, b, nil, nil, unix.MSG_NOSIGNAL)
		if err != nil {
			res.Errnos = append(res.Errnos, unix.ErrnoName(err.(unix.Errno)))
			return false
		}
		return true
	}
	reply := func() {
		buf := make([]byte, 64)
		_, _ = unix.Read(fd, buf)
	}
	switch o.mode {
	case "shutdown":
		if send(req) {
			reply()
		}
		if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
			return err
		}
		send(req)
		return nil
	case "bulk":
		big := make([]byte, o.bulk)
		for off := 0; off < len(big); {
			n, err := unix.Write(fd, big[off:min(len(big), off+64<<10)])
			if err != nil {
				res.Errnos = append(res.Errnos, unix.ErrnoName(err.(unix.Errno)))
				return nil
			}
			off += n
		}
		return nil
	}
	// A pooled connection: a few request/replies, then (idle) a silence or
	// (pmtu) one large request, then requests until one fails.
	for range 3 {
		if !send(req) {
			return nil
		}
		reply()
		time.Sleep(100 * time.Millisecond)
	}
	if o.mode == "pmtu" {
		if !send(make([]byte, o.bulk)) {
			return nil
		}
	} else {
		time.Sleep(o.idle)
	}
	for i := 0; i < o.count && time.Now().Before(deadline); i++ {
		if !send(req) {
			return nil
		}
		if o.mode == "idle" {
			// The reply may never come (a dropped flow); do not wait for it.
			time.Sleep(o.interval)
			drain(fd)
		} else {
			time.Sleep(o.interval)
		}
	}
	return nil
}

func drain(fd int) {
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil || n <= 0 {
			return
		}
	}
}

func dial(o clientOpts, res *result) (int, error) {
	fd, err := unix.Socket(family(o.to), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if o.keepalive > 0 {
		s := int(o.keepalive / time.Second)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, s)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, s)
	}
	c, _ := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	res.Cookies = append(res.Cookies, c)
	if err := rawsock.Connect(fd, sockaddr(o.to), 10*time.Second); err != nil {
		unix.Close(fd)
		res.Errnos = append(res.Errnos, unix.ErrnoName(err.(unix.Errno)))
		return -1, err
	}
	return fd, nil
}
