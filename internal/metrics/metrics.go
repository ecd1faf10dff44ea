// Package metrics exports a live session as Prometheus metrics. The
// counters come from the kernel's exact totals, read while the session
// runs, not from the event stream: a full ring buffer loses events, never
// counts. Each process's counts are labelled with its workload; the number
// of workload values is bounded and workloads that are gone expire.
package metrics

import (
	"regexp"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Label values that are not a workload's name.
const (
	// LabelOther holds the workloads past Config.MaxWorkloads while every
	// admitted one has failed within Config.EvictIdle.
	LabelOther = "other"
	// LabelUnknown holds counts of processes that exited before their
	// workload was named.
	LabelUnknown = "unknown"
)

// Config bounds the metrics and names their processes.
type Config struct {
	Version      string
	MaxWorkloads int // distinct workload label values; the rest are "other"
	// EvictIdle: with MaxWorkloads reached, a new workload takes the
	// place of the one whose last failure is oldest, if that was at least
	// EvictIdle ago (default a minute, so that a scrape has seen its last
	// count); else it is counted as "other".
	EvictIdle time.Duration
	SeriesTTL time.Duration // a workload with no live process for this long is dropped
	// Names names a running process's workload; ok is false when the
	// process is gone. Nil labels every count "unknown" unless an event
	// of the process named it.
	Names func(pid uint32) (w *events.Workload, ok bool)
	// Peer puts the peer's address (or prefix) in a label; MaxPeers
	// bounds its values, the rest are "other".
	Peer     Peer
	MaxPeers int
	// Poll is how often the kernel's totals are read to name new
	// processes while they still run; scrapes read them too.
	Poll time.Duration
}

// Sink is both a pipeline sink and a Prometheus collector.
type Sink struct {
	cfg   Config
	descs descs

	mu     sync.Mutex
	read   func() (*events.Totals, error)
	retire func(pids []uint32) (*events.Totals, error)
	totals *events.Totals // the last totals read
	// retired holds the counts of processes that exited, taken out of
	// the kernel's map, by workload.
	retired seriesCounts
	pids    map[uint32]*process
	seen    map[string]time.Time // admitted workload label -> last time it had a live process or a new count
	failed  map[string]time.Time // admitted workload label -> last time it had a new count
	evicted uint64               // workloads evicted for new ones
	counts  map[events.TotalsKey]events.TotalsValue
	diags   map[[2]string]uint64 // rule, workload
	peers   map[string]struct{}  // admitted peer labels
	// lostUser is what the reader lost, known once the session ends.
	lostUser uint64
	// readErrors counts failed reads of the kernel's totals map (a read
	// or a retirement): each leaves the exported counts as they were.
	readErrors uint64
	hooks      session.Plan
	start      time.Time
	stop       chan struct{}
	done       chan struct{}
}

type process struct {
	label     string
	expired   bool
	deadSince time.Time // when the process was first seen gone
}

var (
	descDiagnoses = prometheus.NewDesc("sendtrace_diagnoses_total",
		"Diagnoses concluded from the event stream, by rule.", []string{"rule", "workload"}, nil)
	descEvicted = prometheus.NewDesc("sendtrace_workloads_evicted_total",
		"Workloads whose series were dropped to make room for new ones under --max-workloads, the one that failed least recently first.", nil, nil)
	descLost = prometheus.NewDesc("sendtrace_events_lost_total",
		"Events lost on their way to sendtrace, by cause: ring_full (the kernel found the ring buffer full), reader (sendtrace could not decode or deliver them; known when the session ends). Their counts above are kept; diagnoses miss them.", []string{"cause"}, nil)
	descUncounted = prometheus.NewDesc("sendtrace_uncounted_total",
		"Events the kernel's totals map had no room for: the counts above are short by this many.", nil, nil)
	descUnresolved = prometheus.NewDesc("sendtrace_owners_unresolved_total",
		"Events whose owner was still being looked up through /proc when they were lost: counted under no workload.", nil, nil)
	descReadErrors = prometheus.NewDesc("sendtrace_totals_read_errors_total",
		"Failed reads of the kernel's totals map: the counts above stayed as they were until a read succeeded.", nil, nil)
	descLayer = prometheus.NewDesc("sendtrace_layer_degraded",
		"1 for a tracing layer no hook of this kernel can serve (its counts are missing), else 0; hook is the hook in use, degraded, or off (not hooked by choice).", []string{"layer", "hook"}, nil)
	descStart = prometheus.NewDesc("sendtrace_start_time_seconds",
		"When this session started counting, in seconds since the epoch: every count above is since then.", nil, nil)
	descBuild = prometheus.NewDesc("sendtrace_build_info",
		"sendtrace's version; always 1.", []string{"version", "goversion"}, nil)
)

// New returns a metrics sink.
func New(cfg Config) *Sink {
	if cfg.MaxWorkloads <= 0 {
		cfg.MaxWorkloads = 500
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 100
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.EvictIdle <= 0 {
		cfg.EvictIdle = time.Minute
	}
	return &Sink{
		cfg:     cfg,
		descs:   newDescs(cfg.Peer),
		peers:   make(map[string]struct{}),
		totals:  &events.Totals{},
		pids:    make(map[uint32]*process),
		seen:    make(map[string]time.Time),
		failed:  make(map[string]time.Time),
		counts:  make(map[events.TotalsKey]events.TotalsValue),
		retired: newSeries(),
		diags:   make(map[[2]string]uint64),
		start:   time.Now(),
	}
}

// Begin implements pipeline.Sink: the plan's layers and the start time
// are exported as the agent's health.
func (s *Sink) Begin(d *session.Description) error {
	if d == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = d.Hooks
	if !d.StartTime.IsZero() {
		s.start = d.StartTime
	}
	return nil
}

// WatchTotals implements pipeline.TotalsWatcher: from now on, the kernel's
// totals are read every Poll and on every scrape, and those of processes
// that exited are retired.
func (s *Sink) WatchTotals(live pipeline.LiveTotals) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.read, s.retire = live.Read, live.Retire
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.poll(s.stop, s.done)
}

func (s *Sink) poll(stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		s.refresh()
		s.mu.Unlock()
	}
}

// Event names the event's process by the workload the pipeline resolved
// from its cgroup, so a process that exits before the next poll keeps
// its name.
func (s *Sink) Event(e *events.Event) error {
	if e.Workload == nil || e.PID == 0 {
		return nil
	}
	s.mu.Lock()
	if p := s.pids[e.PID]; p == nil || p.label == LabelUnknown || p.reusedBy(e.Workload) {
		s.name(e.PID, e.Workload)
	}
	s.mu.Unlock()
	return nil
}

// reusedBy says whether an event of workload w, under the pid of a process
// that exited, comes from a new process that was given the same pid. The
// exited process's own sockets outlive it, but their events keep its
// cgroup; an event from another cgroup is the new process's. (Reuse
// within one workload needs no new name.)
func (p *process) reusedBy(w *events.Workload) bool {
	return !p.deadSince.IsZero() && p.label != LabelOther && p.label != w.String()
}

var _ pipeline.DiagnosisSink = (*Sink)(nil)

// Diagnosis counts one diagnosis under its process's workload.
func (s *Sink) Diagnosis(d *diagnose.Diagnosis) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	label := s.labelOf(d.PID)
	s.diags[[2]string{d.Rule, label}]++
	s.fail(label, time.Now())
	return nil
}

// End stops reading the kernel and keeps the session's final totals.
func (s *Sink) End(end *session.End) error {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.read, s.retire = nil, nil
	if end != nil && end.Totals != nil {
		s.totals = end.Totals
		s.lostUser = end.Totals.LostUser
	}
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return nil
}

// refresh reads the kernel's totals and names processes it has not seen.
// s.mu is held.
func (s *Sink) refresh() {
	if s.read != nil {
		if t, err := s.read(); err == nil {
			s.totals = t
		} else {
			s.readErrors++
		}
	}
	now := time.Now()
	// The workloads that count again first, so that none of them is
	// evicted to make room for a new one counted in the same read.
	var changed []uint32
	for k, v := range s.totals.ByKey {
		if s.counts[k] == v {
			continue
		}
		s.counts[k] = v
		changed = append(changed, k.PID)
		if p := s.pids[k.PID]; p != nil && !p.expired {
			s.fail(p.label, now)
		}
	}
	for _, pid := range changed {
		p := s.labelProcess(pid)
		if p.expired {
			// The pid counts again: a process reusing it, or one whose
			// workload's series expired or were evicted.
			delete(s.pids, pid)
			p = s.labelProcess(pid)
		}
		s.touch(p.label, now)
		s.fail(p.label, now)
	}
	s.retireExited(now)
	if s.cfg.SeriesTTL > 0 {
		for label, t := range s.seen {
			if now.Sub(t) > s.cfg.SeriesTTL {
				s.drop(label)
			}
		}
	}
}

// drop stops exporting a workload's series and forgets its counts; its
// processes are named afresh if they count again. s.mu is held.
func (s *Sink) drop(label string) {
	delete(s.seen, label)
	delete(s.failed, label)
	s.retired.forget(label)
	for k := range s.diags {
		if k[1] == label {
			delete(s.diags, k)
		}
	}
	for _, p := range s.pids {
		if p.label == label {
			p.expired = true
		}
	}
}

func (s *Sink) touch(label string, now time.Time) {
	if _, ok := s.seen[label]; ok {
		s.seen[label] = now
	}
}

// fail notes a new count of an admitted workload. s.mu is held.
func (s *Sink) fail(label string, now time.Time) {
	if _, ok := s.failed[label]; ok {
		s.failed[label] = now
	}
}

// evictable finds the admitted workload whose last failure is oldest, if
// that is at least EvictIdle ago. s.mu is held.
func (s *Sink) evictable(now time.Time) (string, bool) {
	var oldest string
	var at time.Time
	for label, t := range s.failed {
		if oldest == "" || t.Before(at) || t.Equal(at) && label < oldest {
			oldest, at = label, t
		}
	}
	return oldest, oldest != "" && now.Sub(at) >= s.cfg.EvictIdle
}

// labelProcess returns the process of pid, naming it on first sight.
func (s *Sink) labelProcess(pid uint32) *process {
	if p := s.pids[pid]; p != nil {
		return p
	}
	var w *events.Workload
	if s.cfg.Names != nil {
		w, _ = s.cfg.Names(pid)
	}
	return s.name(pid, w)
}

func (s *Sink) labelOf(pid uint32) string { return s.labelProcess(pid).label }

// name gives pid its workload label, admitting the workload while there
// is room. s.mu is held.
func (s *Sink) name(pid uint32, w *events.Workload) *process {
	label := LabelUnknown
	if w != nil {
		label = w.String()
		if _, ok := s.seen[label]; !ok {
			now := time.Now()
			if len(s.seen) >= s.cfg.MaxWorkloads {
				// The bound is full: the workload that failed least
				// recently makes room, unless every one failed lately.
				if old, ok := s.evictable(now); ok {
					s.drop(old)
					s.evicted++
				}
			}
			if len(s.seen) >= s.cfg.MaxWorkloads {
				label = LabelOther
			} else {
				s.seen[label] = now
				s.failed[label] = now
			}
		}
	}
	p := &process{label: label}
	s.pids[pid] = p
	return p
}

// Describe implements prometheus.Collector.
func (s *Sink) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.descs.sendFailures, s.descs.retransmits, s.descs.drops, s.descs.resets, descDiagnoses, descEvicted, descLost, descUncounted, descUnresolved, descReadErrors, descLayer, descStart, descBuild} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads the kernel's totals
// now, so a scrape sees every count up to this moment.
func (s *Sink) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	s.refresh()
	type pair [2]string
	peerOn := s.cfg.Peer.enabled()
	out := newSeries()
	s.addAll(&out, &s.retired)
	for k, v := range s.totals.ByKey {
		if p := s.pids[k.PID]; p != nil && !p.expired {
			s.add(&out, k, v, p.label)
		}
	}
	diags := make(map[pair]uint64, len(s.diags))
	for k, n := range s.diags {
		if s.liveLabel(k[1]) {
			diags[k] = n
		}
	}
	lostKernel, lostUser := s.totals.LostKernel, s.lostUser
	uncounted, unresolved, readErrors := s.totals.Uncounted, s.totals.OwnersUnresolved, s.readErrors
	hooks, start := s.hooks, s.start
	evicted := s.evicted
	s.mu.Unlock()

	for _, m := range []struct {
		desc   *prometheus.Desc
		counts map[triple]uint64
	}{{s.descs.sendFailures, out.sends}, {s.descs.retransmits, out.retrans}, {s.descs.drops, out.drops}, {s.descs.resets, out.resets}} {
		for k, n := range m.counts {
			if n == 0 {
				continue
			}
			labels := k[:2]
			if peerOn {
				labels = k[:]
			}
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(n), labels...)
		}
	}
	for k, n := range diags {
		ch <- prometheus.MustNewConstMetric(descDiagnoses, prometheus.CounterValue, float64(n), k[0], k[1])
	}
	ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(evicted))
	ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(lostKernel), "ring_full")
	ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(lostUser), "reader")
	ch <- prometheus.MustNewConstMetric(descUncounted, prometheus.CounterValue, float64(uncounted))
	ch <- prometheus.MustNewConstMetric(descUnresolved, prometheus.CounterValue, float64(unresolved))
	ch <- prometheus.MustNewConstMetric(descReadErrors, prometheus.CounterValue, float64(readErrors))
	for _, h := range hooks {
		v := 0.0
		if h.Status() == session.StatusDegraded {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descLayer, prometheus.GaugeValue, v, h.Layer, h.Shown())
	}
	ch <- prometheus.MustNewConstMetric(descStart, prometheus.GaugeValue, float64(start.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, s.cfg.Version, runtime.Version())
}

// liveLabel reports whether a label's series are still exported. s.mu is
// held.
func (s *Sink) liveLabel(label string) bool {
	if label == LabelOther || label == LabelUnknown {
		return true
	}
	_, ok := s.seen[label]
	return ok
}

// Names returns the names of every metric a Sink exports, so that rules
// and dashboards shipped with sendtrace can be checked against them.
func Names() map[string]bool {
	names := make(map[string]bool)
	ch := make(chan *prometheus.Desc, 32)
	go func() {
		New(Config{}).Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	return names
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)
