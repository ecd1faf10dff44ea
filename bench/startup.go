package main

import (
	"os/exec"
	"strings"
	"time"
)

// Start-up: from exec to the --ready-file, which sendtrace writes once
// every program is attached and the socket owners are seeded.

type startupResult struct {
	ready []float64 // seconds
	stop  []float64 // seconds from SIGINT to exit
}

func (h *harness) runStartup() error {
	res := &startupResult{}
	h.startup = res
	for i := 0; i < h.cfg.startupRuns; i++ {
		p, took, err := h.startSendtrace("-o", "json", "--duration", "60s")
		if err != nil {
			return err
		}
		t := time.Now()
		if err := p.stop(); err != nil {
			return err
		}
		res.ready = append(res.ready, took.Seconds())
		res.stop = append(res.stop, time.Since(t).Seconds())
	}
	s := spreadOf(res.ready)
	h.logf("startup: median %.0f ms (min %.0f, max %.0f)", 1e3*s.median, 1e3*s.min, 1e3*s.max)
	return nil
}

// runGoBench runs the userspace hot-path benchmarks and keeps their
// result lines.
func (h *harness) runGoBench() error {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchtime", h.cfg.benchtime,
		"./internal/loader", "./internal/record", "./internal/events")
	cmd.Dir = h.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return err
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			keep = append(keep, strings.Join(strings.Fields(l), " "))
		}
	}
	h.gobench = strings.Join(keep, "\n")
	return nil
}
