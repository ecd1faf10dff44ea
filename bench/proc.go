package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// workload is a running bench/workload process: it has printed its first
// line and waits for a line on stdin.
type workload struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	pid   int
	first string
}

// Result is what bench/workload prints when a timed loop ends.
type Result struct {
	Attempts uint64  `json:"attempts"`
	Failed   uint64  `json:"failed"`
	Errno    string  `json:"errno"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"rate"`
}

func (h *harness) startWorkload(args ...string) (*workload, error) {
	cmd := exec.Command(h.workloadBin, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &workload{cmd: cmd, stdin: in, out: bufio.NewReader(out), pid: cmd.Process.Pid}
	line, err := w.out.ReadString('\n')
	if err != nil {
		w.kill()
		return nil, fmt.Errorf("workload %s: %w", strings.Join(args, " "), err)
	}
	w.first = strings.TrimSpace(line)
	return w, nil
}

// firstInt returns the number after the first line's word ("port 1234").
func (w *workload) firstInt() int {
	f := strings.Fields(w.first)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func (w *workload) start() error {
	_, err := io.WriteString(w.stdin, "go\n")
	return err
}

func (w *workload) result() (Result, error) {
	var r Result
	line, err := w.out.ReadString('\n')
	if err != nil {
		return r, fmt.Errorf("workload result: %w", err)
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return r, fmt.Errorf("workload result %q: %w", line, err)
	}
	return r, nil
}

// finish tells the workload to go on (or exit) and waits for it.
func (w *workload) finish() error {
	_, _ = io.WriteString(w.stdin, "go\n")
	w.stdin.Close()
	_, _ = io.Copy(io.Discard, w.out)
	return w.cmd.Wait()
}

func (w *workload) kill() {
	_ = w.cmd.Process.Kill()
	_ = w.cmd.Wait()
}

// tracerProc is a sendtrace (or peer tracer) process.
type tracerProc struct {
	cmd    *exec.Cmd
	stderr *tailBuffer
	done   chan struct{}
	err    error
}

func startTracer(cmd *exec.Cmd) (*tracerProc, error) {
	tb := &tailBuffer{}
	if cmd.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	if cmd.Stderr == nil {
		cmd.Stderr = tb
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &tracerProc{cmd: cmd, stderr: tb, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *tracerProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startSendtrace runs sendtrace with args and waits until it has written
// its ready file. It returns the time from exec to the ready file.
func (h *harness) startSendtrace(args ...string) (*tracerProc, time.Duration, error) {
	ready := fmt.Sprintf("%s/ready-%d", h.tmp, time.Now().UnixNano())
	args = append(args, "--ready-file", ready)
	t0 := time.Now()
	p, err := startTracer(exec.Command(h.sendtraceBin, args...))
	if err != nil {
		return nil, 0, err
	}
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if p.exited() || time.Since(t0) > 30*time.Second {
			_ = p.stop()
			return nil, 0, fmt.Errorf("sendtrace %s did not become ready: %s", strings.Join(args, " "), p.stderr.String())
		}
		time.Sleep(500 * time.Microsecond)
	}
	took := time.Since(t0)
	os.Remove(ready)
	return p, took, nil
}

// stop sends SIGINT, as an operator's Ctrl-C does, and waits.
func (p *tracerProc) stop() error {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
	}
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w: %s", p.cmd.Path, p.err, p.stderr.String())
		}
		return nil
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within 60s", p.cmd.Path)
	}
}

// tailBuffer keeps the last few KiB written to it, for error messages.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 16<<10 {
		t.b = append(t.b[:0], t.b[len(t.b)-8<<10:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }

// waitForLine reads r until a line containing want, or the timeout.
func waitForLine(r io.Reader, want string, timeout time.Duration) error {
	found := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				found <- nil
				// Keep draining so the writer never blocks.
				for sc.Scan() {
				}
				return
			}
		}
		found <- errors.New("stream ended before " + strconv.Quote(want))
	}()
	select {
	case err := <-found:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("no %q within %v", want, timeout)
	}
}

// procStatus reads a field of /proc/PID/status in KiB.
func procStatus(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseUint(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

// mapResidentKiB is the resident size of the BPF map memory pid has
// mapped (the ring buffer, mapped twice so that a record may wrap). It
// shows in VmRSS but is the maps' memory, which their memlock counts.
func mapResidentKiB(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0
	}
	var n uint64
	inMap := false
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			inMap = len(f) >= 6 && f[5] == "anon_inode:bpf-map"
		case inMap && len(f) >= 2 && f[0] == "Rss:":
			v, _ := strconv.ParseUint(f[1], 10, 64)
			n += v
		}
	}
	return n
}
