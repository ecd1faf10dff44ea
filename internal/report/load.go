// Package report rebuilds what a live session showed from a recording, and
// compares two recordings.
//
// Counts come from the footer's kernel totals when the recording has one,
// because those are exact even when the ring buffer lost events; otherwise
// from the events in the file, and the report says so.
package report

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/session"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/render"
)

// Options select what Load keeps beyond the summaries, and how it
// diagnoses.
type Options struct {
	// Conn, when non-zero, keeps every event of the socket with this
	// cookie for a timeline.
	Conn uint64
	// Name is how the report names the recording; default its path.
	Name string
	// Diagnose is the thresholds of the diagnosis engine the events
	// are replayed through (zero fields: the defaults).
	Diagnose diagnose.Config
}

// Recording is everything a report or a diff needs from one file.
type Recording struct {
	Path      string
	Header    *record.Header
	Footer    *record.Footer // nil when the recording was not stopped cleanly
	Truncated bool
	// CutAt is, when the compressed stream itself was cut, the byte of
	// the file where it stops; 0 otherwise. Compression names the stream.
	CutAt       int64
	Compression record.Compression
	Skipped     int
	Events      uint64 // event records read

	// Summary is the live mode's summary, fed with every event.
	Summary *render.Summary

	// StartMono and EndMono bound the recording in CLOCK_MONOTONIC ns.
	// Without a footer, EndMono is the last event's.
	StartMono, EndMono uint64

	// Observed counts the events in the file by kind; ObservedErrno by
	// kind and errno.
	Observed      map[events.Kind]uint64
	ObservedErrno map[events.Kind]map[int32]uint64

	Dests map[string]*Dest
	Procs map[Proc]*ProcStats
	Conns map[uint64]*Conn

	// Times of the events the buckets count, in arrival order.
	points points

	// Timeline holds the events of Options.Conn, in time order.
	Timeline []events.Event

	// Diagnoses are the likely causes of the failures, found by running
	// the live mode's diagnosis over the file's events in order.
	Diagnoses []diagnose.Diagnosis

	opts  Options
	dests events.Dests
	// retransSegs is every retransmitted segment: the kernel's count
	// (retransExact) or the events'.
	retransSegs  uint64
	retransExact bool
	netns        map[uint32]*netnsSeen
	// pidNetns is the namespaces each process's events came from.
	pidNetns map[uint32]map[uint32]bool
	ttf      map[netip.AddrPort][]time.Duration
}

// point is one event the buckets count: 16 bytes, as an hour of a
// thousand failures a second is 3.6M of them.
type point struct {
	mono uint64
	segs uint32 // a retransmit's segments (events.Event.Segs is 32 bits)
	kind events.Kind
}

// pointsChunk is how many points one block of points holds. Blocks of a
// fixed size grow a long recording's points without copying them into
// ever larger arrays, whose old copies would briefly double the memory.
const pointsChunk = 1 << 16

// points are the events the buckets count, in arrival order.
type points [][]point

func (ps *points) add(p point) {
	if n := len(*ps); n == 0 || len((*ps)[n-1]) == pointsChunk {
		*ps = append(*ps, make([]point, 0, pointsChunk))
	}
	last := &(*ps)[len(*ps)-1]
	*last = append(*last, p)
}

// each calls fn for every point, in arrival order.
func (ps points) each(fn func(point)) {
	for _, c := range ps {
		for _, p := range c {
			fn(p)
		}
	}
}

// Dest is what happened to one destination, with its connections'
// times to failure.
type Dest struct {
	*events.Dest
	Key string // the destination as recordings key it; "" when unknown
	TTF []time.Duration
}

// Sends is the successful send calls to the destination, nil when not
// counted.
func (d *Dest) Sends() *uint64 {
	if d.Traffic == nil {
		return nil
	}
	return d.Traffic.Sends
}

// Bytes is the bytes those sends handed to the kernel, nil when not
// counted.
func (d *Dest) Bytes() *uint64 {
	if d.Traffic == nil {
		return nil
	}
	return d.Traffic.Bytes
}

// RetransSegs is the kernel's count of retransmitted segments.
func (d *Dest) RetransSegs() uint64 {
	if d.Traffic == nil {
		return 0
	}
	return d.Traffic.RetransSegs
}

// Proc identifies a socket owner.
type Proc struct {
	PID  uint32
	Comm string
}

// ProcStats is what one process's sockets did.
type ProcStats struct {
	// SendErrors, SendErrno and ErrorReports are the kernel's totals
	// when the footer has them (Exact), else the events in the file;
	// Received is the events in the file, set with Exact.
	SendErrors   uint64
	SendErrno    map[int32]uint64
	ErrorReports uint64
	Exact        bool
	Received     ProcFailures
	Retransmits  uint64 // retransmit events
	// Retrans is the retransmitted segments by kind: the kernel's exact
	// counts (untraced included) when the footer has them, else the
	// events'.
	Retrans events.RetransSegs
	Conns   map[uint64]struct{}
}

// ProcFailures counts a process's failed sends and error reports.
type ProcFailures struct {
	SendErrors   uint64 `json:"send_errors"`
	ErrorReports uint64 `json:"error_reports"`
}

// Conn is one socket's story, kept small: the timeline itself is only
// kept for the connection asked for.
type Conn struct {
	Cookie      uint64
	Dst         string
	Proc        Proc
	First, Last uint64 // mono of first and last event
	Events      uint64
	Retransmits uint64 // retransmit events
	// Retrans is the segments its retransmit events carried, by kind:
	// the kernel counts untraced segments per process and destination,
	// not per socket.
	Retrans    events.RetransSegs
	SendErrors uint64
	Errno      int32 // first error report's errno, else first send error's
	FailedAt   uint64
	// TTF is its time to failure (diagnose.TimeToFailure), as its
	// diagnosis measured it; -1 when the connection did not fail that way.
	TTF      time.Duration
	reported bool // an error report with an errno was seen
}

// Load reads a whole recording. Other sinks given here (the HTML page)
// see the same replay, diagnoses included.
func Load(path string, o Options, also ...pipeline.Sink) (*Recording, error) {
	rec := &Recording{
		Path:          path,
		Summary:       render.NewSummary(),
		Observed:      map[events.Kind]uint64{},
		ObservedErrno: map[events.Kind]map[int32]uint64{},
		Procs:         map[Proc]*ProcStats{},
		Conns:         map[uint64]*Conn{},
		opts:          o,
		ttf:           map[netip.AddrPort][]time.Duration{},
	}
	rd, err := record.Replay(path, pipeline.New(diagnose.New(o.Diagnose), append([]pipeline.Sink{rec}, also...)...))
	if err != nil {
		return nil, err
	}
	if o.Name != "" {
		rec.Path = o.Name
	}
	rec.Header = rd.Header
	rec.Footer = rd.Footer
	rec.Truncated = rd.Truncated
	if rd.StreamCut {
		rec.CutAt = rd.CutAt
	}
	rec.Compression = rd.Compression()
	rec.Skipped = rd.Skipped
	rec.Events = rd.EventsRead
	rec.Dests = make(map[string]*Dest, rec.dests.Len())
	for _, d := range rec.dests.Sorted() {
		k := events.AddrString(d.Dst)
		rec.Dests[k] = &Dest{Dest: d, Key: k, TTF: rec.ttf[d.Dst]}
	}
	slices.SortStableFunc(rec.Timeline, func(a, b events.Event) int { return cmp.Compare(a.Mono, b.Mono) })
	return rec, nil
}

// Begin notes where the recording starts.
func (r *Recording) Begin(d *session.Description) error {
	r.StartMono = d.StartMonoNS
	return nil
}

// Event counts one event.
func (r *Recording) Event(e *events.Event) error {
	r.observe(e, r.opts)
	return nil
}

var _ pipeline.DiagnosisSink = (*Recording)(nil)

// Diagnosis keeps what the replayed events concluded. A connection's
// time to failure is the one its diagnosis measured over the retransmits
// of the data never acknowledged (diagnose.TimeToFailure), so that
// report, diff, their pages and the diagnosis give one figure (an
// earlier, acknowledged retransmit is not part of the failure).
func (r *Recording) Diagnosis(d *diagnose.Diagnosis) error {
	r.Diagnoses = append(r.Diagnoses, *d)
	if ttf, ok := diagnose.TimeToFailure(d); ok {
		if c := r.Conns[d.Cookie]; c != nil && c.TTF < 0 {
			c.TTF = ttf
			r.ttf[d.Dst] = append(r.ttf[d.Dst], c.TTF)
		}
	}
	return nil
}

// End takes the footer's end time and the kernel's traffic counters.
func (r *Recording) End(end *session.End) error {
	r.EndMono = max(r.EndMono, end.MonoNS)
	r.dests.AddTraffic(end.Traffic)
	r.dests.ApplyTotals(end.Totals)
	r.applyProcTotals(end.Totals)
	if end.Totals.HasRetransSegs() {
		r.retransSegs = end.Totals.SumSegs(events.KindRetransmit)
		r.retransExact = true
	}
	return nil
}

// applyProcTotals replaces each process's failures and retransmitted
// segments with the kernel's, which count every event where the file may
// not, and add up to TcpRetransSegs. A pid seen under two names (an exec)
// keeps its counts on the first name; a pid the kernel counted for
// without an event gets a row of its own.
func (r *Recording) applyProcTotals(t *events.Totals) {
	if t == nil || len(t.ByKey) == 0 {
		return
	}
	procs := slices.SortedFunc(maps.Keys(r.Procs), func(a, b Proc) int {
		return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.Comm, b.Comm))
	})
	first := map[uint32]*ProcStats{}
	for _, p := range procs {
		s := r.Procs[p]
		if first[p.PID] == nil {
			first[p.PID] = s
		}
		s.Received = ProcFailures{SendErrors: s.SendErrors, ErrorReports: s.ErrorReports}
		s.SendErrors, s.SendErrno, s.ErrorReports, s.Exact = 0, map[int32]uint64{}, 0, true
	}
	get := func(pid uint32) *ProcStats {
		s := first[pid]
		if s == nil {
			s = &ProcStats{SendErrno: map[int32]uint64{}, Conns: map[uint64]struct{}{}, Exact: true}
			r.Procs[Proc{PID: pid}] = s
			first[pid] = s
		}
		return s
	}
	for k, v := range t.ByKey {
		switch k.Kind {
		case events.KindSendError:
			s := get(k.PID)
			s.SendErrors += v.Count
			s.SendErrno[k.Errno] += v.Count
		case events.KindErrorReport:
			get(k.PID).ErrorReports += v.Count
		}
	}
	if !t.HasRetransSegs() {
		return
	}
	for _, s := range r.Procs {
		s.Retrans = events.RetransSegs{}
	}
	for pid, segs := range t.RetransSegsByPID() {
		get(pid).Retrans = *segs
	}
}

func (r *Recording) observe(e *events.Event, o Options) {
	r.Summary.Observe(e)
	r.dests.Observe(e)
	r.observeNetns(e)
	r.Observed[e.Kind]++
	if e.Errno != 0 {
		m := r.ObservedErrno[e.Kind]
		if m == nil {
			m = map[int32]uint64{}
			r.ObservedErrno[e.Kind] = m
		}
		m[e.Errno]++
	}
	if e.Mono > r.EndMono {
		r.EndMono = e.Mono
	}
	if o.Conn != 0 && e.Cookie == o.Conn {
		r.Timeline = append(r.Timeline, *e)
	}
	switch e.Kind {
	case events.KindSendError, events.KindRetransmit, events.KindErrorReport, events.KindReceiveReset, events.KindSendReset:
		r.points.add(point{mono: e.Mono, segs: uint32(events.EventSegs(e)), kind: e.Kind})
	}

	dst := events.AddrString(e.Dst)
	proc := Proc{PID: e.PID, Comm: e.Comm}
	p := r.Procs[proc]
	if p == nil {
		p = &ProcStats{SendErrno: map[int32]uint64{}, Conns: map[uint64]struct{}{}}
		r.Procs[proc] = p
	}
	var c *Conn
	if e.Cookie != 0 {
		c = r.Conns[e.Cookie]
		if c == nil {
			c = &Conn{Cookie: e.Cookie, First: e.Mono, TTF: -1}
			r.Conns[e.Cookie] = c
		}
		c.Events++
		c.First = min(c.First, e.Mono)
		c.Last = max(c.Last, e.Mono)
		if c.Dst == "" {
			c.Dst = dst
		}
		if e.OwnerKnown || c.Proc.PID == 0 {
			c.Proc = proc
		}
		p.Conns[e.Cookie] = struct{}{}
	}

	switch e.Kind {
	case events.KindSendError:
		p.SendErrors++
		p.SendErrno[e.Errno]++
		if c != nil {
			c.SendErrors++
			if c.Errno == 0 {
				c.Errno = e.Errno
				c.FailedAt = e.Mono
			}
		}
	case events.KindRetransmit:
		if !r.retransExact {
			r.retransSegs += events.EventSegs(e)
		}
		p.Retransmits++
		p.Retrans.Observe(e)
		if c != nil {
			c.Retransmits++
			c.Retrans.Observe(e)
		}
	case events.KindErrorReport:
		p.ErrorReports++
		if c != nil && e.Errno != 0 && !c.reported {
			// The error report is what the application's next send
			// returns, so it marks the failure even when a send error
			// was seen first on a non-blocking socket.
			c.reported = true
			c.Errno = e.Errno
			c.FailedAt = e.Mono
		}
	}
}

// Duration is how long the recording ran.
func (r *Recording) Duration() time.Duration {
	if r.Footer != nil && r.Footer.DurationSec > 0 {
		return time.Duration(r.Footer.DurationSec * 1e9)
	}
	if r.EndMono > r.StartMono {
		return time.Duration(r.EndMono - r.StartMono)
	}
	return 0
}

// Exact says whether counts come from the kernel's totals.
func (r *Recording) Exact() bool { return r.Footer != nil }

// Count returns the number of events of a kind: the kernel's exact count
// when the footer has it, else the events in the file.
func (r *Recording) Count(k events.Kind) uint64 {
	if r.Footer != nil {
		if n, ok := r.Footer.ByKind[k.String()]; ok {
			return n
		}
	}
	return r.Observed[k]
}

// RetransSegs is the retransmitted segments, the unit of TcpRetransSegs:
// the kernel's exact count (untraced segments included) when the footer
// has it, else the segments of the events in the file.
func (r *Recording) RetransSegs() uint64 { return r.retransSegs }

// CountErrno returns the number of events of a kind with an errno, exact
// when the footer has it.
func (r *Recording) CountErrno(k events.Kind, errno int32) uint64 {
	if r.Footer != nil {
		if _, ok := r.Footer.ByKind[k.String()]; ok {
			return r.Footer.ByErrno[k.String()][events.ErrnoName(errno)]
		}
	}
	return r.ObservedErrno[k][errno]
}

// Errnos returns the errnos seen for a kind, in the footer or the events.
func (r *Recording) Errnos(k events.Kind) []int32 {
	seen := map[int32]bool{}
	for n := range r.ObservedErrno[k] {
		seen[n] = true
	}
	if r.Footer != nil {
		for name := range r.Footer.ByErrno[k.String()] {
			if n, err := events.ParseErrno(name); err == nil {
				seen[n] = true
			}
		}
	}
	out := make([]int32, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Traffic returns the sends and bytes over all destinations, with ok false
// when the recording did not count them.
func (r *Recording) Traffic() (sends, bytes uint64, ok bool) {
	if r.Footer == nil || r.Footer.DestinationsSource != "kernel" {
		return 0, 0, false
	}
	for _, d := range r.Footer.Destinations {
		if d.Sends == nil || d.Bytes == nil {
			return 0, 0, false
		}
		sends += *d.Sends
		bytes += *d.Bytes
	}
	return sends, bytes, true
}

// TTF returns every connection's time to failure, in cookie order.
func (r *Recording) TTF() []time.Duration {
	var out []time.Duration
	for _, c := range r.sortedConns() {
		if c.TTF >= 0 {
			out = append(out, c.TTF)
		}
	}
	return out
}

func (r *Recording) sortedConns() []*Conn {
	out := make([]*Conn, 0, len(r.Conns))
	for _, c := range r.Conns {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Conn) int { return cmp.Compare(a.Cookie, b.Cookie) })
	return out
}

// Wall converts a monotonic timestamp to wall-clock time with the
// header's boot time.
func (r *Recording) Wall(mono uint64) time.Time { return r.Header.Wall(mono) }

func dstLess(a, b string) int {
	pa, ea := netip.ParseAddrPort(a)
	pb, eb := netip.ParseAddrPort(b)
	if ea == nil && eb == nil {
		return pa.Compare(pb)
	}
	return cmp.Compare(a, b)
}
