package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	workloadnames "github.com/sendtrace/sendtrace/internal/workload"
)

// The soak: weeks of a node compressed into minutes. `sendtrace serve`
// runs while short-lived processes, each in a systemd unit's cgroup of its
// own that is removed when it exits, fail sends; every few seconds the
// benchmark samples serve's RSS and the series /metrics exports. Memory
// must stay flat: the kernel's totals of exited processes are retired into
// serve's counters, and a unit's series expire --series-ttl after its last
// process.

type soakSample struct {
	at        time.Duration
	processes int    // short-lived processes run so far
	rssKiB    uint64 // serve's VmRSS
	mapRSSKiB uint64 // of which BPF map pages (the ring buffer)
	mapKiB    uint64 // the memlock of serve's BPF maps
	series    int    // sendtrace_send_failures_total series exported
}

// footprintKiB is what the machine gives to serve: its RSS outside the
// maps plus the maps' own memory, each page counted once.
func (s soakSample) footprintKiB() uint64 { return s.rssKiB - s.mapRSSKiB + s.mapKiB }

type soakResult struct {
	ttl     time.Duration
	samples []soakSample
	failed  uint64 // failed sends the processes saw
}

// soakFlat is how much serve's RSS may grow from the first third of the
// soak to the last.
const soakFlat = 1.25

// soakMaxMiB bounds serve's footprint (RSS outside the maps plus the
// maps) at any time in the soak: a fleet agent's memory limit.
const soakMaxMiB = 64

func (h *harness) runSoak() error {
	root, err := workloadnames.CgroupV2Mount()
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	res := &soakResult{ttl: 5 * time.Second}
	if h.cfg.quick {
		res.ttl = time.Second
	}
	h.soak = res
	host := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), rand.IntN(256), 1+rand.IntN(254))
	addr, err := freeLoopback()
	if err != nil {
		return err
	}
	st, _, err := h.startSendtrace("serve", "--listen", addr, "--dst", host+"/32", "--events=false", "--series-ttl", res.ttl.String())
	if err != nil {
		return err
	}
	defer st.stop()
	pid := st.cmd.Process.Pid
	slice := filepath.Join(root, fmt.Sprintf("sendtrace-soak-%d.slice", os.Getpid()))
	if err := os.Mkdir(slice, 0o755); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	defer os.Remove(slice)

	start := time.Now()
	every := h.cfg.soakDur / 12
	next := every
	for n := 0; time.Since(start) < h.cfg.soakDur; n++ {
		failed, err := h.soakProcess(slice, n, host)
		if err != nil {
			return err
		}
		res.failed += failed
		if el := time.Since(start); el >= next {
			next += every
			s := soakSample{at: el, processes: n + 1}
			if s.rssKiB = procStatus(pid, "VmRSS"); s.rssKiB == 0 {
				return fmt.Errorf("soak: no VmRSS for serve (pid %d)", pid)
			}
			s.mapRSSKiB = mapResidentKiB(pid)
			for _, m := range mapsOf(pid) {
				s.mapKiB += m.memlock / 1024
			}
			if s.series, err = countSeries(addr); err != nil {
				return err
			}
			res.samples = append(res.samples, s)
			h.logf("soak: %s: %d processes, RSS %d KiB (maps' pages %d KiB), maps %d KiB, footprint %d KiB, %d series",
				el.Round(time.Second), s.processes, s.rssKiB, s.mapRSSKiB, s.mapKiB, s.footprintKiB(), s.series)
		}
	}
	return st.stop()
}

// soakProcess runs one short-lived failing process in a unit's cgroup of
// its own, then removes the cgroup.
func (h *harness) soakProcess(slice string, n int, host string) (uint64, error) {
	unit := filepath.Join(slice, fmt.Sprintf("soak-%d.service", n))
	if err := os.Mkdir(unit, 0o755); err != nil {
		return 0, err
	}
	defer os.Remove(unit)
	w, err := h.startWorkload("storm", "-mode", "epipe", "-rate", "500", "-duration", "100ms", "-host", host)
	if err != nil {
		return 0, err
	}
	defer w.kill()
	if err := os.WriteFile(filepath.Join(unit, "cgroup.procs"), []byte(strconv.Itoa(w.pid)), 0o644); err != nil {
		return 0, err
	}
	if err := w.start(); err != nil {
		return 0, err
	}
	r, err := w.result()
	if err != nil {
		return 0, err
	}
	_ = w.cmd.Wait()
	return r.Failed, nil
}

// countSeries counts the send failure series /metrics exports.
func countSeries(addr string) (int, error) {
	n := 0
	err := scrape(addr, func(l string) {
		if strings.HasPrefix(l, "sendtrace_send_failures_total{") {
			n++
		}
	})
	return n, err
}

// soakGrowth is the mean footprint of the last third of the samples over
// the first third's.
func (r *soakResult) soakGrowth() float64 {
	k := len(r.samples) / 3
	if k == 0 {
		return 0
	}
	mean := func(s []soakSample) float64 {
		var sum float64
		for _, x := range s {
			sum += float64(x.footprintKiB())
		}
		return sum / float64(len(s))
	}
	return mean(r.samples[len(r.samples)-k:]) / mean(r.samples[:k])
}

func (h *harness) soakSection(p func(string, ...any)) {
	r := h.soak
	p("## 8. Soak: `sendtrace serve` while short-lived workloads come and go\n\n")
	p("For %s, one process after another runs in a systemd unit's cgroup of its own (`sendtrace-soak-N.slice/soak-K.service`, removed when the process exits), fails EPIPE sends for 100 ms towards a loopback address of its own, and exits; `sendtrace serve --dst that/32 --events=false --series-ttl %s` runs throughout. Every %s the benchmark reads serve's VmRSS and counts the `sendtrace_send_failures_total` series /metrics exports. The processes saw %d failed sends in all.\n\n",
		h.cfg.soakDur, r.ttl, (h.cfg.soakDur / 12).Round(100*time.Millisecond), r.failed)
	p("The footprint is what the machine gives to serve, each page once: its RSS less the BPF map pages mapped into it (the ring buffer, mapped twice so that a record may wrap), plus the maps' memory (their `memlock`).\n\n")
	p("| time | processes so far | serve RSS | of which map pages | BPF maps | footprint | series exported |\n|---|---|---|---|---|---|---|\n")
	for _, s := range r.samples {
		p("| %s | %d | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %d |\n", s.at.Round(time.Second), s.processes,
			float64(s.rssKiB)/1024, float64(s.mapRSSKiB)/1024, float64(s.mapKiB)/1024, float64(s.footprintKiB())/1024, s.series)
	}
	p("\n")
}

func (h *harness) soakTarget(p func(string, ...any)) {
	r := h.soak
	g := r.soakGrowth()
	maxSeries := 0
	var maxFoot uint64
	for _, s := range r.samples {
		maxSeries = max(maxSeries, s.series)
		maxFoot = max(maxFoot, s.footprintKiB())
	}
	procs := 0
	if len(r.samples) > 0 {
		procs = r.samples[len(r.samples)-1].processes
	}
	p("| soak, %d short-lived workloads in %s | footprint flat (last third ≤ %.2f× the first) and under %d MiB, series bounded by `--series-ttl` | footprint last third %.2f× the first, at most %.1f MiB; at most %d series at once | %s |\n",
		procs, h.cfg.soakDur, soakFlat, soakMaxMiB, g, float64(maxFoot)/1024, maxSeries,
		verdict(g > 0 && g <= soakFlat && maxFoot <= soakMaxMiB*1024 && maxSeries < procs))
}
