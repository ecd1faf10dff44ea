package main

import (
	"errors"
	"flag"
	"io"
	"net/http"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func httpClient(args []string, res *result) error {
	fs := flag.NewFlagSet("http", flag.ExitOnError)
	url := fs.String("url", "", "URL")
	count := fs.Int("count", 1, "requests")
	idle := fs.Duration("idle", 0, "pause between requests")
	put := fs.Int("put", 0, "PUT this many bytes; 0: GET")
	rate := fs.Int("rate", 0, "PUT at this many bytes/s; 0: as fast as it can")
	timeout := fs.Duration("timeout", 30*time.Second, "http.Client.Timeout: the application gives up")
	_ = fs.Parse(args)
	c := &http.Client{Timeout: *timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	for i := range *count {
		if i > 0 {
			time.Sleep(*idle)
		}
		var body io.Reader
		method := http.MethodGet
		if *put > 0 {
			method, body = http.MethodPut, &paced{left: *put, rate: *rate}
		}
		req, err := http.NewRequest(method, *url, body)
		if err != nil {
			return err
		}
		res.Sends++
		resp, err := c.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil {
			var errno syscall.Errno
			if errors.As(err, &errno) {
				res.Errnos = append(res.Errnos, unix.ErrnoName(errno))
			}
			return err
		}
	}
	return nil
}

// paced is a request body of left bytes, read at rate bytes/s.
type paced struct {
	left, rate int
}

func (p *paced) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := min(len(b), p.left, 16<<10)
	if p.rate > 0 {
		time.Sleep(time.Duration(n) * time.Second / time.Duration(p.rate))
	}
	p.left -= n
	return n, nil
}
