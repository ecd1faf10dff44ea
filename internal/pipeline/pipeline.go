// Package pipeline carries one session's events, live or replayed from a
// recording, through the diagnoser it is handed to every consumer. Each
// consumer (the text and JSON streams, the summary, the recording writer,
// the report) is a Sink; the source of events does not know which sinks
// listen, and the sinks do not know which diagnoser concluded what they
// are given.
package pipeline

import (
	"errors"
	"sync"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Sink consumes one session. Begin comes first, then events, then End
// once. An error from a sink ends the session: a stream or a recording
// that cannot be written is over.
type Sink interface {
	Begin(*session.Description) error
	Event(*events.Event) error
	End(*session.End) error
}

// DiagnosisSink is a sink that takes the diagnoses too: each is handed
// to it after the event that concluded it (and those the end of the
// stream leaves open, before End). Sinks that only count or forward
// events leave it out.
type DiagnosisSink interface {
	Diagnosis(*diagnose.Diagnosis) error
}

// Flusher is a sink that buffers output a person is watching; the live
// source flushes it when the stream goes quiet.
type Flusher interface {
	Flush() error
}

// TotalsWatcher is a sink that reads the kernel's exact totals while a
// live session runs (the metrics), rather than only at its end.
type TotalsWatcher interface {
	WatchTotals(LiveTotals)
}

// LiveTotals reads the kernel's exact totals while a session runs.
type LiveTotals struct {
	Read func() (*events.Totals, error)
	// Retire takes the totals of processes that have exited out of the
	// kernel's map and returns them, each key read and removed in one
	// step: a session that runs for weeks keeps the map to the living
	// processes, and loses or doubles no count. Nil where no session
	// runs long enough to need it.
	Retire func(pids []uint32) (*events.Totals, error)
	// Session reads every count since the session began: the kernel's
	// totals plus those Retire took out. The pipeline provides it.
	Session func() (*events.Totals, error)
}

// withSession gives live a Session reader. Retiring and reading the
// session's totals take one lock, so that no count is in both the
// kernel's map and the retired sum, or in neither.
func withSession(live LiveTotals) LiveTotals {
	if live.Read == nil || live.Session != nil {
		return live
	}
	var (
		mu      sync.Mutex
		retired events.Totals
	)
	if retire := live.Retire; retire != nil {
		live.Retire = func(pids []uint32) (*events.Totals, error) {
			mu.Lock()
			defer mu.Unlock()
			t, err := retire(pids)
			if t != nil {
				retired.AddKeys(t)
			}
			return t, err
		}
	}
	read := live.Read
	live.Session = func() (*events.Totals, error) {
		mu.Lock()
		defer mu.Unlock()
		t, err := read()
		if err != nil {
			return nil, err
		}
		t.AddKeys(&retired)
		return t, nil
	}
	return live
}

// Stopper is a sink that must read something while the programs are
// still attached, just before a live session detaches them: the
// namespaces' own counters, whose end must be the tracer's end too, or
// whatever happens in between counts on one side only. It runs while
// events may still arrive.
type Stopper interface {
	Stopping()
}

// Stage completes each event before diagnosis and the sinks see it (the
// workload resolver names its owner). It runs on every event the source
// delivers, so it must be cheap after its first sight of a key.
type Stage interface {
	Enrich(*events.Event)
}

// Pipeline runs its diagnoser over the events and hands the events to
// every sink, and the diagnoses to every DiagnosisSink.
type Pipeline struct {
	stages    []Stage
	sinks     []Sink
	diagnoser Diagnoser // nil: NoDiagnosis
	diagSinks []DiagnosisSink
	err       error
	// sysctls are the namespaces' recorded sysctls by inode: the
	// header's, and a recording's footer's (Namespaces).
	sysctls map[uint32]map[string]string
}

// New returns a pipeline that runs d over the events and feeds sinks.
// d is NoDiagnosis where no diagnosis is wanted.
func New(d Diagnoser, sinks ...Sink) *Pipeline {
	p := &Pipeline{sinks: sinks, diagnoser: d, sysctls: map[uint32]map[string]string{}}
	if r, ok := d.(SysctlsReader); ok {
		r.ReadSysctls(p.netnsSysctls)
	}
	for _, s := range sinks {
		if ds, ok := s.(DiagnosisSink); ok {
			p.diagSinks = append(p.diagSinks, ds)
		}
	}
	return p
}

// Enrich adds a stage that completes every event before the sinks see it.
func (p *Pipeline) Enrich(s Stage) *Pipeline {
	p.stages = append(p.stages, s)
	return p
}

// Err is the first error a sink returned.
func (p *Pipeline) Err() error { return p.err }

// Begin starts every sink.
func (p *Pipeline) Begin(d *session.Description) error {
	p.know(d.Netns.Inode, d.Sysctls)
	for _, s := range p.sinks {
		p.keep(s.Begin(d))
	}
	return p.err
}

// Event hands one event, then what it concluded, to every sink. The
// event is only valid during the call. After a sink has failed, events
// are no longer delivered.
func (p *Pipeline) Event(e *events.Event) error {
	if p.err != nil {
		return p.err
	}
	for _, s := range p.stages {
		s.Enrich(e)
	}
	var ds []diagnose.Diagnosis
	if p.diagnoser != nil {
		ds = p.diagnoser.Observe(e)
	}
	for _, s := range p.sinks {
		p.keep(s.Event(e))
	}
	p.diagnoses(ds)
	return p.err
}

func (p *Pipeline) diagnoses(ds []diagnose.Diagnosis) {
	for i := range ds {
		for _, s := range p.diagSinks {
			p.keep(s.Diagnosis(&ds[i]))
		}
	}
}

// WatchTotals hands the live source's totals reader to every sink that
// reads them while the session runs.
func (p *Pipeline) WatchTotals(live LiveTotals) {
	live = withSession(live)
	for _, s := range p.sinks {
		if w, ok := s.(TotalsWatcher); ok {
			w.WatchTotals(live)
		}
	}
}

// Stopping tells every Stopper that the programs are about to be
// detached.
func (p *Pipeline) Stopping() {
	for _, s := range p.sinks {
		if st, ok := s.(Stopper); ok {
			st.Stopping()
		}
	}
}

// Flush flushes every sink that buffers.
func (p *Pipeline) Flush() error {
	for _, s := range p.sinks {
		if f, ok := s.(Flusher); ok {
			p.keep(f.Flush())
		}
	}
	return p.err
}

// End delivers the diagnoses still open (connections that were failing
// when the session ended), then ends every sink, even after an error, so
// that each can close what it holds.
func (p *Pipeline) End(end *session.End) error {
	if p.err == nil && p.diagnoser != nil {
		p.diagnoses(p.diagnoser.Finish())
	}
	errs := []error{p.err}
	for _, s := range p.sinks {
		if err := s.End(end); err != nil && !said(errs, err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// said reports whether err was already among errs, as the same error or
// the same words: a sink that failed on an event (a full disk) fails its
// End with that error again, and one cause is one line.
func said(errs []error, err error) bool {
	for _, e := range errs {
		if e != nil && (e == err || e.Error() == err.Error()) {
			return true
		}
	}
	return false
}

func (p *Pipeline) keep(err error) {
	if p.err == nil && err != nil {
		p.err = err
	}
}
