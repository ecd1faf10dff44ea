package record

import (
	"net/netip"
	"sort"
	"sync"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Recorder is the sink that writes a recording: the header when the
// session begins, every event and diagnosis, and the footer with the
// kernel's totals when it ends.
type Recorder struct {
	path      string
	overwrite bool
	h         *Header
	dests     events.Dests

	mu sync.Mutex // guards w, which the status line reads
	w  *Writer
}

// NewRecorder returns a sink that creates path when the session begins.
// Without overwrite, an existing file is never replaced: it may be the
// recording of an earlier incident.
func NewRecorder(path string, overwrite bool) *Recorder {
	return &Recorder{path: path, overwrite: overwrite}
}

// Begin creates the file and writes the header.
func (r *Recorder) Begin(d *session.Description) error {
	h := &Header{Description: *d}
	w, err := CreateFile(r.path, r.overwrite, h)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.w, r.h = w, h
	r.mu.Unlock()
	return nil
}

// Stats reports what has been written so far; ok is false before the
// file exists.
func (r *Recorder) Stats() (st Stats, ok bool) {
	r.mu.Lock()
	w := r.w
	r.mu.Unlock()
	if w == nil {
		return Stats{}, false
	}
	return w.Stats(), true
}

// Event appends one event record.
func (r *Recorder) Event(e *events.Event) error {
	r.dests.Observe(e)
	return r.w.WriteEvent(e)
}

var _ pipeline.DiagnosisSink = (*Recorder)(nil)

// Diagnosis appends one diagnosis record.
func (r *Recorder) Diagnosis(d *diagnose.Diagnosis) error { return r.w.WriteDiagnosis(d) }

// End writes the footer and closes the file. Without the kernel's totals
// (the session failed) the file is closed without a footer, and readers
// report it as incomplete, which is the truth.
func (r *Recorder) End(end *session.End) error {
	if r.w == nil {
		return nil
	}
	var f *Footer
	if end.Totals != nil {
		dests, source := r.destinations(end.Traffic)
		f = NewFooter(end, r.h, r.w.Events(), dests, source)
	}
	return r.w.Close(f)
}

// destinations prefers the kernel's per-destination counters, which count
// every segment; without them only retransmits can be counted, from the
// events.
func (r *Recorder) destinations(traffic []events.Traffic) ([]DestStats, string) {
	source := "events"
	var ds events.Dests
	if len(traffic) > 0 {
		source = "kernel"
		// A destination the events name keeps its entry even with no
		// successful send: when every send to it failed, 0 is what the
		// kernel counted.
		named := map[netip.AddrPort]bool{}
		for _, d := range r.dests.Sorted() {
			named[d.Dst] = true
		}
		live := traffic[:0:0]
		for _, t := range traffic {
			// Listeners and sockets that never sent have nothing to
			// normalise by.
			if t.Dst.IsValid() && (named[t.Dst] || t.Sends != nil && *t.Sends > 0 || t.DataSegs+t.RetransSegs > 0 || t.Bytes != nil && *t.Bytes > 0) {
				live = append(live, t)
			}
		}
		ds.AddTraffic(live)
	} else {
		ds = r.dests
	}
	return destStats(&ds, source), source
}

// DestinationsFromEvents is a footer's destinations when only events
// were seen (destinations_source "events"): the retransmitted segments
// they carried.
func DestinationsFromEvents(ds *events.Dests) []DestStats { return destStats(ds, "events") }

func destStats(ds *events.Dests, source string) []DestStats {
	out := make([]DestStats, 0, ds.Len())
	for _, d := range ds.Sorted() {
		k := events.AddrString(d.Dst)
		switch {
		case d.Traffic != nil:
			out = append(out, DestStats{Dst: k, Sends: d.Traffic.Sends, Bytes: d.Traffic.Bytes, DataSegs: d.Traffic.DataSegs, RetransSegs: d.Traffic.RetransSegs})
		case source == "events" && d.Retrans.Total() > 0:
			// Segments, as the kernel counts them: one event under
			// GSO carries many.
			out = append(out, DestStats{Dst: k, RetransSegs: d.Retrans.Total()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst < out[j].Dst })
	return out
}
