package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The agent: `sendtrace serve`, as the DaemonSet runs it, while a paced
// workload fails sends at a steady rate and a scraper reads /metrics.
// What it costs is the CPU time the kernel charged to the process
// (utime + stime) over the wall time, as a share of one core.

// agentCPUTarget is the share of one core the agent may use at
// agentRate failures per second.
const agentCPUTarget = 0.01

type agentRun struct {
	name     string
	args     []string // serve's arguments besides --listen and --dst
	offered  float64
	seconds  float64
	cpuSecs  float64
	failed   uint64 // failed sends the workload saw
	exported uint64 // sendtrace_send_failures_total{errno="EPIPE"} at the end
	scrapes  int
}

func (r agentRun) cpuShare() float64 { return r.cpuSecs / r.seconds }

type agentResult struct {
	rate   float64
	scrape time.Duration
	runs   []agentRun
}

func (h *harness) runAgent() error {
	res := &agentResult{rate: h.cfg.agentRate, scrape: 5 * time.Second}
	if h.cfg.quick {
		res.scrape = 200 * time.Millisecond
	}
	h.agent = res
	for _, c := range []agentRun{
		{name: agentDaemonSet, args: []string{"--events=false"}},
		{name: agentFlight, args: []string{"--events=false", "--flight-dir", filepath.Join(h.tmp, "agent-flight")}},
		{name: "`--events=false --event-batch 0` (woken per event)", args: []string{"--events=false", "--event-batch=0"}},
		{name: "events on stdout", args: []string{"--events=true"}},
	} {
		r, err := h.agentOnce(res, c)
		if err != nil {
			return err
		}
		h.logf("agent: %s: %s failures/s for %.1f s, CPU %.2f%% of a core, exported %d of %d", r.name,
			rate(r.offered), r.seconds, 100*r.cpuShare(), r.exported, r.failed)
		res.runs = append(res.runs, r)
	}
	return nil
}

// agentDaemonSet names the run with the DaemonSet's arguments.
const agentDaemonSet = "DaemonSet's (`--events=false`)"

func (h *harness) agentOnce(res *agentResult, run agentRun) (agentRun, error) {
	// An address of its own in 127.0.0.0/8, with --dst below, keeps
	// other programs' failures on this shared machine (other loopbacks,
	// other namespaces) out of the count.
	host := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), rand.IntN(256), 1+rand.IntN(254))
	w, err := h.startWorkload("storm", "-mode", "epipe", "-rate", strconv.FormatFloat(res.rate, 'f', 0, 64),
		"-duration", h.cfg.agentDur.String(), "-host", host)
	if err != nil {
		return run, err
	}
	defer w.kill()
	addr, err := freeLoopback()
	if err != nil {
		return run, err
	}
	// --dst is no process filter, so serve runs as the DaemonSet runs
	// it, with no periodic re-seeding of socket owners.
	st, _, err := h.startSendtrace(append([]string{"serve", "--listen", addr, "--dst", host + "/32"}, run.args...)...)
	if err != nil {
		return run, err
	}
	defer st.stop()
	pid := st.cmd.Process.Pid
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return run, err
	}
	t0 := time.Now()
	if err := w.start(); err != nil {
		return run, err
	}
	done := make(chan struct{})
	var r Result
	var werr error
	go func() { r, werr = w.result(); close(done) }()
	tick := time.NewTicker(res.scrape)
	defer tick.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			if _, err := scrapeFailures(addr); err == nil {
				run.scrapes++
			}
		}
	}
	if werr != nil {
		return run, werr
	}
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return run, err
	}
	run.seconds = time.Since(t0).Seconds()
	run.cpuSecs = cpu1 - cpu0
	run.failed = r.Failed
	run.offered = float64(r.Failed) / r.Seconds
	if run.exported, err = scrapeFailures(addr); err != nil {
		return run, err
	}
	return run, st.stop()
}

// cpuSeconds is utime + stime of a process, every thread, from
// /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it are fixed.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q %q", pid, f[11], f[12])
	}
	// USER_HZ is 100 on every Linux architecture sendtrace runs on.
	return float64(ut+st) / 100, nil
}

func freeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scrapeFailures reads /metrics as Prometheus would and returns the
// EPIPE send failures it exports.
func scrapeFailures(addr string) (uint64, error) {
	var n uint64
	err := scrape(addr, func(l string) {
		if strings.HasPrefix(l, "sendtrace_send_failures_total{") && strings.Contains(l, `errno="EPIPE"`) {
			v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			if err == nil {
				n += uint64(v)
			}
		}
	})
	return n, err
}

// scrape reads /metrics once, as Prometheus would, a line at a time.
func scrape(addr string, line func(string)) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line(sc.Text())
	}
	return sc.Err()
}

func (h *harness) agentSection(p func(string, ...any)) {
	a := h.agent
	p("## 7. The agent: `sendtrace serve` at %s failures/s\n\n", rate(a.rate))
	p("`workload storm -mode epipe` fails %s sends a second (EPIPE, paced in batches of 64) for %s towards a loopback address of its own (127.a.b.c) while `sendtrace serve --dst 127.a.b.c/32` runs with the DaemonSet's arguments (`--events=false`; events wait in the kernel up to `--event-batch 200ms`, so the reader wakes once per batch, not per failure), with every event waking the reader (`--event-batch 0`) and with the events on stdout as JSON Lines (read and thrown away by the benchmark); /metrics is scraped every %s, as Prometheus would. CPU is the process's utime + stime from `/proc/PID/stat` (10 ms ticks) over the workload's wall time, as a share of one core. The exported count must equal the failures the workload saw.\n\n",
		rate(a.rate), h.cfg.agentDur, a.scrape)
	p("| serve | failures/s | seconds | CPU | share of a core | failures seen | exported | scrapes |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range a.runs {
		p("| %s | %s | %.1f | %.2f s | %.2f%% | %d | %d | %d |\n", r.name, rate(r.offered), r.seconds, r.cpuSecs, 100*r.cpuShare(), r.failed, r.exported, r.scrapes)
	}
	p("\n")
	if base, fl, ok := a.flightPair(); ok {
		p("With the flight recorder on (`--flight-dir`, every event written to its zstd segments), serve used %.2f× the CPU of the DaemonSet's run without it (%.2f s against %.2f s over the same failures; runs one after the other).\n\n",
			fl.cpuSecs/base.cpuSecs, fl.cpuSecs, base.cpuSecs)
	}
}

// flightPair is the agent run without the flight recorder and the one
// with it.
func (a *agentResult) flightPair() (base, fl agentRun, ok bool) {
	var hasBase, hasFlight bool
	for _, r := range a.runs {
		switch r.name {
		case agentDaemonSet:
			base, hasBase = r, true
		case agentFlight:
			fl, hasFlight = r, true
		}
	}
	return base, fl, hasBase && hasFlight && base.cpuSecs > 0
}

func (h *harness) agentTarget(p func(string, ...any)) {
	for _, r := range h.agent.runs {
		if r.name != agentDaemonSet && r.name != agentFlight {
			continue
		}
		p("| agent, `sendtrace serve`, %s, at %s failures/s | < %.0f%% of a core, counts exact | %.2f%% of a core over %.0f s; exported %d of %d | %s |\n",
			r.name, rate(h.agent.rate), 100*agentCPUTarget, 100*r.cpuShare(), r.seconds, r.exported, r.failed,
			verdict(r.cpuShare() < agentCPUTarget && r.exported == r.failed))
	}
	if base, fl, ok := h.agent.flightPair(); ok {
		ratio := fl.cpuSecs / base.cpuSecs
		p("| agent with the flight recorder, against without, at %s failures/s | ≤ %.1f× the CPU | %.2f× (%.2f s against %.2f s) | %s |\n",
			rate(h.agent.rate), flightCPURatioTarget, ratio, fl.cpuSecs, base.cpuSecs, verdict(ratio <= flightCPURatioTarget))
	}
}
