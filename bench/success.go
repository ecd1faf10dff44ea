package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// The success path: one process sends fixed-size messages over loopback
// TCP as fast as it can, untraced and under each peer tracer.

var successSizes = []int{64, 16384}

const (
	peerNone      = "untraced"
	peerSendtrace = "sendtrace (system-wide)"
	peerPID       = "sendtrace --pid (another process)"
	peerBpftrace  = "bpftrace tracepoint:sock:sock_send_length"
	peerStrace    = "strace -f -e trace=%network -p"
)

// bpftraceProg is the peer one-liner: count failed sends by process and
// errno, the closest bpftrace gets to sendtrace in one line.
const bpftraceProg = `tracepoint:sock:sock_send_length /args->ret < 0/ { @[comm, -args->ret] = count(); }`

type successResult struct {
	peers []string
	// rates[peer][size] are the sends/s of every run; ratios[peer][size]
	// divide each traced run by the mean of the untraced runs just before
	// and just after it.
	rates         map[string]map[int][]float64
	ratios        map[string]map[int][]float64
	mountedTrace  bool
	segmentsTotal int
}

// session is a peer that traces the whole segment (sendtrace, bpftrace);
// strace instead attaches to each sender process.
type session interface{ stop() error }

func (h *harness) runSuccess() error {
	res := &successResult{
		rates:  map[string]map[int][]float64{},
		ratios: map[string]map[int][]float64{},
	}
	h.success = res
	res.peers = []string{peerSendtrace, peerPID}
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
		res.rates[p] = map[int][]float64{}
		res.ratios[p] = map[int][]float64{}
	}

	sink, err := h.startWorkload("sink")
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
		rates map[int]float64
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
		case peerBpftrace:
			sess, err = startBpftrace()
		}
		if err != nil {
			return err
		}
		seg := segment{peer: peer, rates: map[int]float64{}}
		for _, size := range successSizes {
			r, err := h.sendRun(port, size, peer == peerStrace)
			if err != nil {
				if sess != nil {
					_ = sess.stop()
				}
				return err
			}
			seg.rates[size] = r
			res.rates[peer][size] = append(res.rates[peer][size], r)
		}
		if sess != nil {
			if err := sess.stop(); err != nil {
				return err
			}
		}
		h.logf("success: %-36s 64 B %9s/s  16 KiB %9s/s", peer, rate(seg.rates[64]), rate(seg.rates[16384]))
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
		for _, size := range successSizes {
			base := (segs[i-1].rates[size] + segs[i+1].rates[size]) / 2
			if base > 0 {
				res.ratios[s.peer][size] = append(res.ratios[s.peer][size], s.rates[size]/base)
			}
		}
	}
	return nil
}

// sendRun runs one sender for the configured time and returns sends/s.
func (h *harness) sendRun(port, size int, underStrace bool) (float64, error) {
	w, err := h.startWorkload("send", "-port", strconv.Itoa(port), "-size", strconv.Itoa(size),
		"-duration", h.cfg.duration.String())
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
