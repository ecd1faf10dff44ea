package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"
)

// The success path: one process sends fixed-size messages over loopback
// TCP as fast as it can, untraced and under each peer tracer.

// sendLoad is one sender workload.
type sendLoad struct {
	name    string
	size    int
	nodelay bool
}

// successLoads: 64-byte messages with the socket's defaults (Nagle
// coalesces them, so a send is little more than the system call: the
// cheapest send there is, where a fixed cost per call weighs most), the
// same with TCP_NODELAY (each message leaves as its own segment, as with
// Go's default and most RPC stacks), and 16 KiB messages.
var successLoads = []sendLoad{
	{"64 B", 64, false},
	{"64 B, TCP_NODELAY", 64, true},
	{"16 KiB", 16384, false},
}

// CPUs of the success path's sender and sink (-1, unpinned, on one CPU).
var senderCPU, sinkCPU = pinnedCPUs()

func pinnedCPUs() (int, int) {
	if runtime.NumCPU() < 2 {
		return -1, -1
	}
	return 0, 1
}

const (
	peerNone       = "untraced"
	peerSendtrace  = "sendtrace (system-wide)"
	peerPID        = "sendtrace --pid (another process)"
	peerStackOnly  = "sendtrace --no-syscall-layer (system-wide)"
	peerFloorStack = "floor: an empty BPF program on sock_send_length"
	peerFloorBoth  = "floor: empty BPF programs on sock_send_length and sys_exit"
	peerBpftrace   = "bpftrace tracepoint:sock:sock_send_length"
	peerStrace     = "strace -f -e trace=%network -p"
)

// bpftraceProg is the peer one-liner: count failed sends by process and
// errno, the closest bpftrace gets to sendtrace in one line.
const bpftraceProg = `tracepoint:sock:sock_send_length /args->ret < 0/ { @[comm, -args->ret] = count(); }`

type successResult struct {
	peers []string
	// rates[peer][load] are the sends/s of every run; ratios[peer][load]
	// divide each traced run by the mean of the untraced runs just before
	// and just after it.
	rates         map[string]map[string][]float64
	ratios        map[string]map[string][]float64
	mountedTrace  bool
	segmentsTotal int
}

// session is a peer that traces the whole segment (sendtrace, bpftrace);
// strace instead attaches to each sender process.
type session interface{ stop() error }

func (h *harness) runSuccess() error {
	res := &successResult{
		rates:  map[string]map[string][]float64{},
		ratios: map[string]map[string][]float64{},
	}
	h.success = res
	res.peers = []string{peerSendtrace, peerPID, peerStackOnly, peerFloorStack, peerFloorBoth}
	if h.cfg.withBpftrace {
		if _, err := exec.LookPath("bpftrace"); err != nil {
			h.note("bpftrace is not installed (apt-get install -y bpftrace): its row is missing.")
		} else {
			res.peers = append(res.peers, peerBpftrace)
		}
	}
	if h.cfg.withStrace {
		if _, err := exec.LookPath("strace"); err != nil {
			h.note("strace is not installed (apt-get install -y strace): its row is missing.")
		} else {
			res.peers = append(res.peers, peerStrace)
		}
	}
	for _, p := range append([]string{peerNone}, res.peers...) {
		res.rates[p] = map[string][]float64{}
		res.ratios[p] = map[string][]float64{}
	}

	// The sender runs on CPU 0 and the sink on CPU 1 (tracers anywhere):
	// left to the scheduler, the two sometimes share a CPU, and the rate
	// of a run swings by a third.
	sink, err := h.startWorkload("sink", "-cpu", strconv.Itoa(sinkCPU))
	if err != nil {
		return err
	}
	defer sink.finish()
	port := sink.firstInt()
	idle, err := h.startWorkload("idle")
	if err != nil {
		return err
	}
	defer idle.finish()

	if contains(res.peers, peerBpftrace) {
		mounted, err := ensureTracefs()
		if err != nil {
			return err
		}
		res.mountedTrace = mounted
		if mounted {
			defer func() { _ = exec.Command("umount", "/sys/kernel/tracing").Run() }()
		}
	}

	type segment struct {
		peer  string
		rates map[string]float64
	}
	var segs []segment
	runSeg := func(peer string) error {
		var sess session
		var err error
		switch peer {
		case peerSendtrace:
			sess, _, err = h.startSendtrace("-o", "json")
		case peerPID:
			sess, _, err = h.startSendtrace("-o", "json", "--pid", strconv.Itoa(idle.pid))
		case peerStackOnly:
			sess, _, err = h.startSendtrace("-o", "json", "--no-syscall-layer")
		case peerFloorStack:
			sess, err = attachFloor("sock_send_length")
		case peerFloorBoth:
			sess, err = attachFloor("sock_send_length", "sys_exit")
		case peerBpftrace:
			sess, err = startBpftrace()
		}
		if err != nil {
			return err
		}
		seg := segment{peer: peer, rates: map[string]float64{}}
		for _, load := range successLoads {
			r, err := h.sendRun(port, load, peer == peerStrace)
			if err != nil {
				if sess != nil {
					_ = sess.stop()
				}
				return err
			}
			seg.rates[load.name] = r
			res.rates[peer][load.name] = append(res.rates[peer][load.name], r)
		}
		if sess != nil {
			// The rates stand: the peer was attached for every run. A
			// peer that will not stop is killed, and the report says so.
			if err := sess.stop(); err != nil {
				h.note("%s did not stop cleanly after its runs, which are kept: %v", peer, err)
			}
		}
		line := fmt.Sprintf("success: %-60s", peer)
		for _, load := range successLoads {
			line += fmt.Sprintf("  %s %9s/s", load.name, rate(seg.rates[load.name]))
		}
		h.logf("%s", line)
		segs = append(segs, seg)
		return nil
	}

	// untraced, P1, untraced, P2, untraced, ... with the peers' order
	// rotated each round, so no peer always follows the same one.
	if err := runSeg(peerNone); err != nil {
		return err
	}
	for round := 0; round < h.cfg.pairs; round++ {
		n := len(res.peers)
		for i := 0; i < n; i++ {
			if err := runSeg(res.peers[(i+round)%n]); err != nil {
				return err
			}
			if err := runSeg(peerNone); err != nil {
				return err
			}
		}
	}
	res.segmentsTotal = len(segs)
	for i := 1; i+1 < len(segs); i++ {
		s := segs[i]
		if s.peer == peerNone {
			continue
		}
		for _, load := range successLoads {
			k := load.name
			base := (segs[i-1].rates[k] + segs[i+1].rates[k]) / 2
			if base > 0 {
				res.ratios[s.peer][k] = append(res.ratios[s.peer][k], s.rates[k]/base)
			}
		}
	}
	return nil
}

// sendRun runs one sender for the configured time and returns sends/s.
func (h *harness) sendRun(port int, load sendLoad, underStrace bool) (float64, error) {
	args := []string{"send", "-port", strconv.Itoa(port), "-size", strconv.Itoa(load.size), "-duration", h.cfg.duration.String(),
		"-cpu", strconv.Itoa(senderCPU)}
	if load.nodelay {
		args = append(args, "-nodelay")
	}
	w, err := h.startWorkload(args...)
	if err != nil {
		return 0, err
	}
	var st *tracerProc
	if underStrace {
		cmd := exec.Command("strace", "-f", "-e", "trace=%network", "-o", os.DevNull, "-p", strconv.Itoa(w.pid))
		stderr, err := cmd.StderrPipe()
		if err != nil {
			w.kill()
			return 0, err
		}
		if st, err = startTracer(cmd); err != nil {
			w.kill()
			return 0, err
		}
		if err := waitForLine(stderr, "attached", 10*time.Second); err != nil {
			w.kill()
			_ = st.stop()
			return 0, fmt.Errorf("strace: %w", err)
		}
		// -f attaches every thread; give it a moment for the rest.
		time.Sleep(200 * time.Millisecond)
	}
	if err := w.start(); err != nil {
		return 0, err
	}
	r, err := w.result()
	if err != nil {
		w.kill()
		return 0, err
	}
	if err := w.finish(); err != nil {
		return 0, err
	}
	if st != nil {
		// strace detaches when its tracee exits.
		select {
		case <-st.done:
		case <-time.After(10 * time.Second):
			_ = st.stop()
		}
	}
	return r.Rate, nil
}

type bpftraceSession struct{ p *tracerProc }

func startBpftrace() (*bpftraceSession, error) {
	cmd := exec.Command("bpftrace", "-e", bpftraceProg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := startTracer(cmd)
	if err != nil {
		return nil, err
	}
	if err := waitForLine(out, "Attaching", 30*time.Second); err != nil {
		_ = p.stop()
		return nil, fmt.Errorf("bpftrace: %w: %s", err, p.stderr.String())
	}
	// bpftrace prints "Attaching" before it attaches.
	time.Sleep(500 * time.Millisecond)
	return &bpftraceSession{p: p}, nil
}

func (b *bpftraceSession) stop() error { return b.p.stop() }

// ensureTracefs mounts tracefs when it is missing. bpftrace needs it for
// classic tracepoints (their formats and ids live there); sendtrace does
// not, because tp_btf programs attach by BTF id.
func ensureTracefs() (mounted bool, err error) {
	if _, err := os.Stat("/sys/kernel/tracing/events/sock/sock_send_length"); err == nil {
		return false, nil
	}
	if out, err := exec.Command("mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing").CombinedOutput(); err != nil {
		return false, fmt.Errorf("mount tracefs for bpftrace: %w: %s", err, out)
	}
	return true, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
