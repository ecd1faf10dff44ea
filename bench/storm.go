package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The failure storm: sends that fail at once, recorded to a file by
// `sendtrace record`, paced at the target rate and unpaced.

type stormConfig struct {
	name  string
	modes []string // one process per mode
	rate  float64  // total offered rate; 0: as fast as the kernel fails them
}

type stormRun struct {
	cfg      stormConfig
	offered  float64 // failed sends per second the workloads made
	seconds  float64
	appFails uint64 // failed sends the workloads saw
	recorded uint64 // event lines in the file
	footerEv uint64 // events the footer says were written
	lostK    uint64
	lostU    uint64
	total    uint64 // kernel totals, every kind
	sendErrs uint64 // kernel totals, send_error
	fileMiB  float64
}

func (r stormRun) recordedRate() float64 { return float64(r.recorded) / r.seconds }

// balanced: what reached the file plus what was reported lost is the
// kernel's exact count, and the kernel counted every failure the
// applications saw.
func (r stormRun) balanced() bool {
	return r.recorded+r.lostK+r.lostU == r.total && r.recorded == r.footerEv && r.sendErrs == r.appFails
}

type stormResult struct {
	runs    []stormRun
	dir     string
	fsType  string
	target  float64
	stormDu time.Duration
}

func (h *harness) runStorm() error {
	target := h.cfg.stormRate
	res := &stormResult{dir: h.cfg.recordDir, target: target, stormDu: h.cfg.stormDur, fsType: fsType(h.cfg.recordDir)}
	h.storm = res
	configs := []stormConfig{
		{fmt.Sprintf("EAGAIN, 1 process, paced at %s/s", rate(target)), []string{"eagain"}, target},
		{fmt.Sprintf("EPIPE, 1 process, paced at %s/s", rate(target)), []string{"epipe"}, target},
		{fmt.Sprintf("EAGAIN + EPIPE, 2 processes, paced at %s/s in all", rate(target)), []string{"eagain", "epipe"}, target},
		{"EPIPE, 1 process, unpaced", []string{"epipe"}, 0},
		{"EAGAIN + EPIPE, 2 processes, unpaced", []string{"eagain", "epipe"}, 0},
	}
	for rep := 0; rep < h.cfg.stormReps; rep++ {
		for _, c := range configs {
			r, err := h.stormOnce(c)
			if err != nil {
				return err
			}
			h.logf("storm: %-48s offered %8s/s recorded %8s/s lost %d balanced %v",
				c.name, rate(r.offered), rate(r.recordedRate()), r.lostK+r.lostU, r.balanced())
			res.runs = append(res.runs, r)
		}
	}
	return nil
}

func (h *harness) stormOnce(c stormConfig) (stormRun, error) {
	run := stormRun{cfg: c}
	var ws []*workload
	defer func() {
		for _, w := range ws {
			w.kill()
		}
	}()
	args := []string{"record", "--status-interval", "0"}
	for _, m := range c.modes {
		per := c.rate / float64(len(c.modes))
		w, err := h.startWorkload("storm", "-mode", m, "-rate", strconv.FormatFloat(per, 'f', 0, 64),
			"-duration", h.cfg.stormDur.String())
		if err != nil {
			return run, err
		}
		ws = append(ws, w)
		args = append(args, "--pid", strconv.Itoa(w.pid))
	}
	file := filepath.Join(h.cfg.recordDir, fmt.Sprintf("sendtrace-bench-%d.jsonl", os.Getpid()))
	defer os.Remove(file)
	args = append(args, "-o", file)
	st, _, err := h.startSendtrace(args...)
	if err != nil {
		return run, err
	}
	for _, w := range ws {
		if err := w.start(); err != nil {
			_ = st.stop()
			return run, err
		}
	}
	for _, w := range ws {
		r, err := w.result()
		if err != nil {
			_ = st.stop()
			return run, err
		}
		run.appFails += r.Failed
		run.offered += float64(r.Failed) / r.Seconds
		if r.Seconds > run.seconds {
			run.seconds = r.Seconds
		}
	}
	if err := st.stop(); err != nil {
		return run, err
	}
	lines, footer, size, err := scanRecording(file)
	if err != nil {
		return run, err
	}
	run.fileMiB = float64(size) / (1 << 20)
	// Every line but the header and the footer is an event.
	if lines >= 2 {
		run.recorded = lines - 2
	}
	run.footerEv = footer.Events
	run.lostK, run.lostU = footer.Lost.Kernel, footer.Lost.User
	for _, t := range footer.Totals {
		run.total += t.Count
		if t.Kind == "send_error" {
			run.sendErrs += t.Count
		}
	}
	return run, nil
}

// footer is the part of a recording's last line the benchmark checks.
type footer struct {
	Kind   string `json:"kind"`
	Events uint64 `json:"events"`
	Totals []struct {
		Kind  string `json:"kind"`
		Count uint64 `json:"count"`
	} `json:"totals"`
	Lost struct {
		Kernel uint64 `json:"kernel"`
		User   uint64 `json:"user"`
	} `json:"lost"`
}

// scanRecording counts the lines of an uncompressed recording and decodes
// its footer.
func scanRecording(path string) (lines uint64, f footer, size int64, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, f, 0, err
	}
	defer fh.Close()
	buf := make([]byte, 1<<20)
	var last []byte // the tail of the file, enough to hold the footer
	for {
		n, rerr := fh.Read(buf)
		lines += uint64(bytes.Count(buf[:n], []byte{'\n'}))
		size += int64(n)
		if n > 0 {
			last = append(last, buf[:n]...)
			if len(last) > 2<<20 {
				last = append(last[:0], last[len(last)-(1<<20):]...)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, f, 0, rerr
		}
	}
	last = bytes.TrimRight(last, "\n")
	if i := bytes.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	if err := json.Unmarshal(last, &f); err != nil || f.Kind != "footer" {
		return 0, f, 0, fmt.Errorf("recording %s has no footer (err %v)", path, err)
	}
	return lines, f, size, nil
}

func fsType(dir string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "?"
	}
	best, typ := "", "?"
	for _, l := range bytes.Split(b, []byte{'\n'}) {
		f := bytes.Fields(l)
		if len(f) < 3 {
			continue
		}
		mp := string(f[1])
		if (dir == mp || len(dir) > len(mp) && dir[:len(mp)] == mp && (mp == "/" || dir[len(mp)] == '/')) && len(mp) > len(best) {
			best, typ = mp, string(f[2])
		}
	}
	return typ
}
