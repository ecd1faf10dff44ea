// Command bench measures what sendtrace costs on this machine and writes
// docs/benchmarks.md. It needs root (it loads BPF, and runs strace and
// bpftrace as peers) and loopback networking only.
//
//	go run ./bench                      # full run, about 6 minutes; writes docs/benchmarks.md
//	go run ./bench -quick               # seconds per workload: proves it runs, writes nothing
//	go run ./bench -workloads success,startup -pairs 7
//	go run ./bench -workloads dropstorm -out /dev/null
//
// Every comparison interleaves its runs (untraced, traced, untraced, ...)
// and reports the median ratio with its min and max, because the machine
// is shared and noisy; absolute rates are context only.
package main

import (
	_ "embed"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

//go:embed lessons.md
var lessons string

type config struct {
	duration     time.Duration // one success-path run
	pairs        int           // interleaved rounds per comparison
	stormDur     time.Duration
	stormReps    int
	stormRate    float64
	dropRate     float64
	conns        int
	agentDur     time.Duration
	agentRate    float64
	soakDur      time.Duration
	startupRuns  int
	workloads    map[string]bool
	out          string
	recordDir    string
	benchtime    string
	quick        bool
	withStrace   bool
	withBpftrace bool
}

type harness struct {
	cfg          config
	root         string
	tmp          string
	sendtraceBin string
	workloadBin  string
	log          *os.File

	success *successResult
	storm   *stormResult
	drops   *dropResult
	many    *manyResult
	startup *startupResult
	agent   *agentResult
	soak    *soakResult
	flight  *flightReadResult
	gobench string
	notes   []string
}

func main() {
	var c config
	var workloads string
	flag.DurationVar(&c.duration, "duration", 2*time.Second, "length of one success-path run")
	flag.IntVar(&c.pairs, "pairs", 5, "interleaved rounds per comparison (at least 5 for the published table)")
	flag.DurationVar(&c.stormDur, "storm-duration", 3*time.Second, "length of one failure-storm run")
	flag.IntVar(&c.stormReps, "storm-reps", 3, "repetitions of each failure-storm configuration")
	flag.Float64Var(&c.stormRate, "storm-rate", 500000, "paced failure rate (events/s) that must record with zero loss")
	flag.Float64Var(&c.dropRate, "drop-rate", 100000, "packets per second the drop storm has the kernel drop")
	flag.IntVar(&c.conns, "conns", 10000, "connections in the many-sockets workload")
	flag.DurationVar(&c.agentDur, "agent-duration", 30*time.Second, "length of one run of the agent workload")
	flag.Float64Var(&c.agentRate, "agent-rate", 1000, "failed sends per second while the agent's CPU is measured")
	flag.DurationVar(&c.soakDur, "soak-duration", 2*time.Minute, "length of the soak workload")
	flag.IntVar(&c.startupRuns, "startup-runs", 9, "start-up measurements")
	flag.StringVar(&workloads, "workloads", "success,storm,dropstorm,many,startup,agent,flightread,soak,gobench", "comma-separated workloads to run")
	flag.StringVar(&c.out, "out", "", "markdown file to write (default docs/benchmarks.md; none with -quick)")
	flag.StringVar(&c.recordDir, "record-dir", "/dev/shm", "directory for the recordings of the failure storm")
	flag.StringVar(&c.benchtime, "benchtime", "1s", "-benchtime for the go test benchmarks")
	flag.BoolVar(&c.quick, "quick", false, "tiny durations and counts, to prove the harness runs (CI)")
	flag.BoolVar(&c.withStrace, "strace", true, "include the strace peer")
	flag.BoolVar(&c.withBpftrace, "bpftrace", true, "include the bpftrace peer")
	flag.Parse()

	outSet := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "out" {
			outSet = true
		}
	})
	if c.quick {
		c.duration = 300 * time.Millisecond
		c.pairs = 1
		c.stormDur = 500 * time.Millisecond
		c.stormReps = 1
		c.conns = 500
		c.agentDur = time.Second
		c.soakDur = 3 * time.Second
		c.startupRuns = 2
		c.benchtime = "100x"
	}
	if !outSet && !c.quick {
		c.out = "docs/benchmarks.md"
	}
	c.workloads = map[string]bool{}
	for _, w := range strings.Split(workloads, ",") {
		if w = strings.TrimSpace(w); w != "" {
			c.workloads[w] = true
		}
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: the benchmark loads BPF programs and attaches strace and bpftrace")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "sendtrace-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	h := &harness{cfg: c, root: root, tmp: tmp, log: os.Stderr,
		sendtraceBin: filepath.Join(tmp, "sendtrace"), workloadBin: filepath.Join(tmp, "workload")}
	h.logf("building sendtrace and the workloads")
	for pkg, bin := range map[string]string{"./cmd/sendtrace": h.sendtraceBin, "./bench/workload": h.workloadBin} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", pkg, err)
		}
	}
	start := time.Now()
	failed := false
	steps := []struct {
		name string
		fn   func() error
	}{
		{"startup", h.runStartup},
		{"success", h.runSuccess},
		{"storm", h.runStorm},
		{"dropstorm", h.runDropStorm},
		{"many", h.runMany},
		{"agent", h.runAgent},
		{"flightread", h.runFlightRead},
		{"soak", h.runSoak},
		{"gobench", h.runGoBench},
	}
	for _, s := range steps {
		if !c.workloads[s.name] {
			continue
		}
		t := time.Now()
		h.logf("== %s", s.name)
		if err := s.fn(); err != nil {
			// Report what did run; the failure goes into the notes.
			h.logf("%s failed: %v", s.name, err)
			h.note("The %s workload failed: %v", s.name, err)
			failed = true
		}
		h.logf("== %s done in %s", s.name, time.Since(t).Round(time.Second))
	}
	md := h.markdown(time.Since(start))
	fmt.Print(md)
	if c.out != "" {
		path := c.out
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
			return err
		}
		h.logf("wrote %s", path)
	}
	if failed {
		return fmt.Errorf("some workloads failed; see the notes")
	}
	return nil
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, "bench: "+format+"\n", args...)
}

func (h *harness) note(format string, args ...any) {
	h.notes = append(h.notes, fmt.Sprintf(format, args...))
}

// repoRoot is the directory of the main module's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run from inside the sendtrace module")
	}
	return filepath.Dir(mod), nil
}

// machine describes where the numbers come from.
type machine struct {
	cores  int
	cpu    string
	kernel string
	goVer  string
	memGiB float64
}

func describeMachine() machine {
	m := machine{cores: runtime.NumCPU(), goVer: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.IndexByte(l, ':'); i >= 0 {
					m.cpu = strings.TrimSpace(l[i+1:])
				}
				break
			}
		}
	}
	if kb := procMeminfo("MemTotal"); kb > 0 {
		m.memGiB = float64(kb) / (1 << 20)
	}
	return m
}

func procMeminfo(field string) uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			var n uint64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, field+":")), "%d", &n)
			return n
		}
	}
	return 0
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
