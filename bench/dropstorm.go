package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// The drop storm: a process whose every datagram the kernel drops, at
// about 100k drops/s, under `sendtrace record --pid`. It runs in a network
// namespace of its own, whose loopback has a shaper with a one-packet
// queue: the sends succeed, the qdisc drops the packets (QDISC_DROP), and
// only kfree_skb sees them. The qdisc's own drop counter is the truth the
// kernel totals are checked against.

const dropPort = 9

type dropRun struct {
	all        bool   // --drop-events 0: every drop streamed
	sent       uint64 // datagrams the workload sent
	seconds    float64
	qdiscDrops uint64 // tc -s qdisc: dropped
	counted    uint64 // kernel totals: drop events
	recorded   uint64 // drop events in the file
	unstreamed uint64 // footer lost.unstreamed
	lostK      uint64
	lostU      uint64
	fileMiB    float64
}

// balanced: every drop the qdisc made was counted by the kernel, and
// what reached the file, what the rate limit held back and what was lost
// add up to that count.
func (r dropRun) balanced() bool {
	return r.counted == r.qdiscDrops && r.recorded+r.unstreamed+r.lostK+r.lostU == r.counted
}

type dropResult struct {
	rate float64
	runs []dropRun
}

func (h *harness) runDropStorm() error {
	res := &dropResult{rate: h.cfg.dropRate}
	h.drops = res
	for i := 0; i < h.cfg.stormReps; i++ {
		for _, all := range []bool{false, true} {
			r, err := h.dropStormOnce(all)
			if err != nil {
				return err
			}
			h.logf("drop storm (all streamed: %v): %d sent, %d dropped by the qdisc, %d counted, %d recorded, %d unstreamed, %d lost",
				all, r.sent, r.qdiscDrops, r.counted, r.recorded, r.unstreamed, r.lostK+r.lostU)
			res.runs = append(res.runs, r)
		}
	}
	return nil
}

func (h *harness) dropStormOnce(all bool) (dropRun, error) {
	run := dropRun{all: all}
	ns := fmt.Sprintf("stbench-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return run, fmt.Errorf("ip netns add %s: %v: %s", ns, err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	for _, args := range [][]string{
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"tc", "-n", ns, "qdisc", "replace", "dev", "lo", "root", "tbf", "rate", "8kbit", "burst", "1600", "limit", "1"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return run, fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	w, err := h.startWorkloadIn(ns, "udpblast", "-port", strconv.Itoa(dropPort),
		"-rate", strconv.FormatFloat(h.cfg.dropRate, 'f', 0, 64), "-duration", h.cfg.stormDur.String())
	if err != nil {
		return run, err
	}
	defer w.kill()
	file := filepath.Join(h.cfg.recordDir, fmt.Sprintf("sendtrace-bench-drops-%d.jsonl.zst", os.Getpid()))
	defer os.Remove(file)
	args := []string{"record", "--status-interval", "0", "--pid", strconv.Itoa(w.pid), "-o", file}
	if all {
		args = append(args, "--drop-events", "0")
	}
	st, _, err := h.startSendtrace(args...)
	if err != nil {
		return run, err
	}
	if err := w.start(); err != nil {
		_ = st.stop()
		return run, err
	}
	r, err := w.result()
	if err != nil {
		_ = st.stop()
		return run, err
	}
	run.sent, run.seconds = r.Attempts-r.Failed, r.Seconds
	if err := st.stop(); err != nil {
		return run, err
	}
	out, err := exec.Command("tc", "-n", ns, "-s", "qdisc", "show", "dev", "lo").CombinedOutput()
	if err != nil {
		return run, fmt.Errorf("tc -s qdisc: %v: %s", err, out)
	}
	m := regexp.MustCompile(`dropped (\d+)`).FindSubmatch(out)
	if m == nil {
		return run, fmt.Errorf("no drop count in tc -s qdisc: %s", out)
	}
	run.qdiscDrops, _ = strconv.ParseUint(string(m[1]), 10, 64)
	_, f, size, err := scanRecording(file)
	if err != nil {
		return run, err
	}
	run.fileMiB = float64(size) / (1 << 20)
	run.lostK, run.lostU, run.unstreamed = f.Lost.Kernel, f.Lost.User, f.Lost.Unstreamed
	for _, t := range f.Totals {
		if t.Kind == "drop" {
			run.counted += t.Count
		}
	}
	run.recorded, err = countKind(file, "drop")
	return run, err
}

// startWorkloadIn starts a workload inside a network namespace; `ip netns
// exec` execs it in place, so its pid is the workload's.
func (h *harness) startWorkloadIn(ns string, args ...string) (*workload, error) {
	bin := h.workloadBin
	h.workloadBin = "ip"
	defer func() { h.workloadBin = bin }()
	return h.startWorkload(append([]string{"netns", "exec", ns, bin}, args...)...)
}

// openRecording opens a recording, zstd-compressed when its name says so.
func openRecording(path string) (io.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	if !strings.HasSuffix(path, ".zst") {
		return f, func() { f.Close() }, nil
	}
	zr, err := zstd.NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return zr, func() { zr.Close(); f.Close() }, nil
}

// countKind counts the records of one kind in a recording.
func countKind(path, kind string) (uint64, error) {
	rd, closeFn, err := openRecording(path)
	if err != nil {
		return 0, err
	}
	defer closeFn()
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	// An event's kind is its third field; the footer's totals name kinds
	// too, further in.
	want := `,"kind":"` + kind + `",`
	var n uint64
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, `{"time":`) && strings.Contains(line[:min(len(line), 120)], want) {
			n++
		}
	}
	return n, sc.Err()
}

func (h *harness) dropSection(p func(string, ...any)) {
	d := h.drops
	p("## 6. Drop storm\n\n")
	p("`workload udpblast` sends 64-byte datagrams at %s/s to 127.0.0.1 in a network namespace of its own, whose loopback has a shaper with a one-packet queue (`tbf rate 8kbit burst 1600 limit 1`): the sends succeed and the qdisc drops nearly every packet, so only `kfree_skb` sees them. `sendtrace record --pid` records to %s (zstd); drop events stream at most %d per socket and second by default, or all of them with `--drop-events 0`; the kernel totals count every drop. A run balances when the kernel counted exactly the drops the qdisc reports (`tc -s qdisc`), and the drop events in the file, those held back by the rate limit and those lost add up to that count.\n\n",
		rate(d.rate), h.cfg.recordDir, 1000)
	p("| run | datagrams/s sent | dropped by the qdisc | kernel total | drop events recorded | held back (rate limit) | lost | balanced | file |\n")
	p("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range d.runs {
		name := "default limit"
		if r.all {
			name = "`--drop-events 0`"
		}
		p("| %s | %s | %d | %d | %d | %d | %d | %s | %.1f MiB |\n", name, rate(float64(r.sent)/r.seconds), r.qdiscDrops, r.counted, r.recorded,
			r.unstreamed, r.lostK+r.lostU, map[bool]string{true: "yes", false: "**no**"}[r.balanced()], r.fileMiB)
	}
	p("\n")
}
