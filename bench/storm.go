package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The failure storm: sends that fail at once, recorded to a file by
// `sendtrace record`, paced at the target rate and unpaced.

type stormConfig struct {
	name  string
	modes []string // one process per mode
	rate  float64  // total offered rate; 0: as fast as the kernel fails them
	ext   string   // recording file extension: jsonl.zst or jsonl
}

// The recording formats: zstd, as the documentation recommends
// (-o FILE.jsonl.zst), and plain JSON Lines.
const (
	extZstd  = "jsonl.zst"
	extPlain = "jsonl"
)

func formatName(ext string) string {
	if ext == extZstd {
		return "zstd"
	}
	return "plain"
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
	runs []stormRun
	// warm are the seconds two writes of warmMiB took before the runs.
	warm    [2]float64
	warmMiB int
	dir     string
	fsType  string
	target  float64
	stormDu time.Duration
}

func (h *harness) runStorm() error {
	target := h.cfg.stormRate
	res := &stormResult{dir: h.cfg.recordDir, target: target, stormDu: h.cfg.stormDur, fsType: fsType(h.cfg.recordDir)}
	h.storm = res
	var configs []stormConfig
	for _, ext := range []string{extZstd, extPlain} {
		f := formatName(ext)
		configs = append(configs,
			stormConfig{fmt.Sprintf("EAGAIN, 1 process, paced at %s/s, %s", rate(target), f), []string{"eagain"}, target, ext},
			stormConfig{fmt.Sprintf("EPIPE, 1 process, paced at %s/s, %s", rate(target), f), []string{"epipe"}, target, ext},
			stormConfig{fmt.Sprintf("EAGAIN + EPIPE, 2 processes, paced at %s/s in all, %s", rate(target), f), []string{"eagain", "epipe"}, target, ext},
			stormConfig{"EPIPE, 1 process, unpaced, " + f, []string{"epipe"}, 0, ext},
			stormConfig{"EAGAIN + EPIPE, 2 processes, unpaced, " + f, []string{"eagain", "epipe"}, 0, ext},
		)
	}
	// Touch as much memory as the largest recording takes before
	// measuring. On this VM guest memory that was never used, or was
	// handed back to the host, costs a host page fault on first touch:
	// the first write of 2 GB to tmpfs took 4.0 s, the next ones 0.6 s.
	// Unwarmed, the first run measured that, not sendtrace.
	res.warmMiB = 1536
	if h.cfg.quick {
		res.warmMiB = 64
	}
	for i := range res.warm {
		secs, err := writeAndRemove(filepath.Join(h.cfg.recordDir, fmt.Sprintf("sendtrace-bench-warm-%d", os.Getpid())), res.warmMiB)
		if err != nil {
			return fmt.Errorf("warm %s: %w", h.cfg.recordDir, err)
		}
		res.warm[i] = secs
	}
	h.logf("storm: writing %d MiB to %s took %.2f s, then %.2f s", res.warmMiB, h.cfg.recordDir, res.warm[0], res.warm[1])
	for rep := 0; rep < h.cfg.stormReps; rep++ {
		for _, c := range configs {
			r, err := h.stormOnce(c)
			if err != nil {
				return err
			}
			h.logf("storm: %-58s offered %8s/s recorded %8s/s lost %d balanced %v",
				c.name, rate(r.offered), rate(r.recordedRate()), r.lostK+r.lostU, r.balanced())
			res.runs = append(res.runs, r)
		}
	}
	return nil
}

// writeAndRemove writes mib MiB to a new file, syncs it, removes it and
// returns how long the writing took.
func writeAndRemove(path string, mib int) (float64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	buf := make([]byte, 1<<20)
	start := time.Now()
	for range mib {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	secs := time.Since(start).Seconds()
	return secs, f.Close()
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
	file := filepath.Join(h.cfg.recordDir, fmt.Sprintf("sendtrace-bench-%d.%s", os.Getpid(), c.ext))
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
	evLines, footer, size, err := scanRecording(file)
	if err != nil {
		return run, err
	}
	run.fileMiB = float64(size) / (1 << 20)
	run.recorded = evLines
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
		Kernel     uint64 `json:"kernel"`
		User       uint64 `json:"user"`
		Unstreamed uint64 `json:"unstreamed"`
	} `json:"lost"`
}

// diagnosisLine starts the lines of a recording that hold a diagnosis,
// which the recorder concludes from the events and which are not events.
var diagnosisLine = []byte(`{"kind":"diagnosis"`)

// scanRecording counts the event lines of a recording (every line but the
// header, the footer and the diagnoses) and decodes its footer.
func scanRecording(path string) (evLines uint64, f footer, size int64, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, f, 0, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return 0, f, 0, err
	}
	var in io.Reader = fh
	if strings.HasSuffix(path, ".zst") {
		zr, err := zstd.NewReader(fh)
		if err != nil {
			return 0, f, 0, err
		}
		defer zr.Close()
		in = zr
	}
	r := bufio.NewReaderSize(in, 1<<20)
	var lines, diagnoses uint64
	var last []byte // the last line: the footer
	for {
		l, rerr := r.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			return 0, f, 0, fmt.Errorf("recording %s has a line over 1 MiB", path)
		}
		if len(l) > 0 {
			lines++
			if bytes.HasPrefix(l, diagnosisLine) {
				diagnoses++
			}
			last = append(last[:0], l...)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, f, 0, rerr
		}
	}
	if err := json.Unmarshal(bytes.TrimRight(last, "\n"), &f); err != nil || f.Kind != "footer" {
		return 0, f, 0, fmt.Errorf("recording %s has no footer (err %v)", path, err)
	}
	if lines < 2+diagnoses {
		return 0, f, 0, fmt.Errorf("recording %s has no header", path)
	}
	return lines - 2 - diagnoses, f, st.Size(), nil
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
