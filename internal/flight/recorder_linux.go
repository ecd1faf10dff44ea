package flight

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/host"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
)

// QueueLen is how many events may wait for the disk. The event path
// never waits: an event that finds the queue full is counted as
// dropped, in the open segment's footer (lost.user) and a metric.
const QueueLen = 16384

// SegmentSpan is the longest a segment stays open: the grain at which
// a window's totals are the kernel's (see Window).
const SegmentSpan = time.Minute

// footerReserve is the room kept in the size bound for the open
// segment's footer and the next record; a footer larger than that
// makes room by deleting older segments before it is written.
const footerReserve = 64 << 10

// Recorder is the pipeline sink that keeps the flight recording.
// Writing happens on its own goroutine; Event only queues a copy. It
// takes no diagnoses (no pipeline.DiagnosisSink): segments keep events,
// and a replay diagnoses them again.
type Recorder struct {
	cfg     Config
	segMax  int64
	segSpan time.Duration

	q    chan events.Event
	done chan struct{}

	queueDropped atomic.Uint64
	diskDropped  atomic.Uint64
	writeDropped atomic.Uint64
	written      atomic.Uint64

	desc       session.Description
	sessionMu  sync.Mutex
	sessionTot func() (*events.Totals, error)
	final      *events.Totals
	// chained is the session's totals at the last segment's close, the
	// next one's start: consecutive segments' totals add up to the
	// session's. Nil after a stop (a short disk), when the next segment
	// reads its own start.
	chained *events.Totals
	// chainedDropped is the drops counted when the last segment closed:
	// those made before the next one opens are the next one's.
	chainedDropped uint64

	// Owned by the writer goroutine.
	seg       *openSegment
	closed    []segment
	diskShort bool

	// history is the start of the directory's history (historyFile).
	history time.Time

	mu sync.Mutex // guards shown
	shown
}

// shown is what the metrics read.
type shown struct {
	bytes     int64
	segments  int
	oldest    time.Time
	diskShort bool
}

type openSegment struct {
	segment
	w       *record.Writer
	h       *record.Header
	base    *events.Totals
	dropped uint64 // queue and write drops when it opened
	dests   events.Dests
}

// NewRecorder checks the directory (creating it 0700) and takes stock
// of the segments an earlier serve left there. It writes nothing until
// the session begins.
func NewRecorder(cfg Config) (*Recorder, error) {
	if cfg.Dir == "" {
		return nil, errors.New("no flight directory given")
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MinFree == 0 {
		cfg.MinFree = DefaultMinFree
	}
	if cfg.freeBytes == nil {
		cfg.freeBytes = freeBytes
	}
	if cfg.MaxSize < 4*minSegment {
		return nil, fmt.Errorf("invalid --flight-max-size %d: give at least %d bytes (4 segments of %d)", cfg.MaxSize, 4*minSegment, minSegment)
	}
	if err := prepareDir(cfg.Dir); err != nil {
		return nil, err
	}
	r := &Recorder{cfg: cfg, segMax: max(cfg.MaxSize/8, minSegment), segSpan: min(SegmentSpan, cfg.MaxAge/4)}
	segs, err := listSegments(cfg.Dir)
	if err != nil {
		return nil, dirError(cfg.Dir, err)
	}
	r.closed = segs
	r.publish()
	return r, nil
}

// minSegment is the smallest segment worth its header.
const minSegment = 256 << 10

// prepareDir creates dir 0700, or checks that an existing one is a
// directory no other user can write into (they could plant or swap the
// segments a report reads), and removes half-created segments.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create flight directory %s: %w", dir, unwrapPath(err))
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("flight directory %s: %w", dir, unwrapPath(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("flight directory %s is not a directory: give a directory for --flight-dir", dir)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("flight directory %s can be written by other users (mode %04o): chmod 700 it, or give another --flight-dir", dir, st.Mode().Perm())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("flight directory %s belongs to uid %d, not to this user (%d): give a directory of this user's for --flight-dir", dir, sys.Uid, os.Geteuid())
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read flight directory %s: %w", dir, unwrapPath(err))
	}
	for _, e := range ents {
		// outfile's temporaries of segments a crash left unnamed.
		if n := e.Name(); strings.HasPrefix(n, "."+segPrefix) && strings.HasSuffix(n, ".part") {
			os.Remove(filepath.Join(dir, n))
		}
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Begin keeps the session's description for the segments' headers and
// starts the writer.
func (r *Recorder) Begin(d *session.Description) error {
	r.desc = *d
	// Watching starts now: the history holds what the directory kept
	// from earlier sessions, or starts here.
	if len(r.closed) == 0 {
		r.setHistory(time.Now())
	} else {
		r.setHistory(historyStart(r.cfg.Dir, r.closed))
	}
	// The kernel's maps are new with the session: its totals start at 0.
	r.chained = &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}}
	r.q = make(chan events.Event, QueueLen)
	r.done = make(chan struct{})
	go r.run()
	return nil
}

// WatchTotals implements pipeline.TotalsWatcher: segments read the
// session's totals as they open and close.
func (r *Recorder) WatchTotals(live pipeline.LiveTotals) {
	r.sessionMu.Lock()
	r.sessionTot = live.Session
	r.sessionMu.Unlock()
}

// Event queues a copy of e; it never waits for the disk.
func (r *Recorder) Event(e *events.Event) error {
	select {
	case r.q <- *e:
	default:
		r.queueDropped.Add(1)
	}
	return nil
}

// End closes the open segment with the session's final totals. A flight
// recorder that could not write never fails the session: it said so in
// its log line and metrics.
func (r *Recorder) End(end *session.End) error {
	if r.q == nil {
		return nil
	}
	final, err := r.sessionTotals()
	if err != nil || final == nil {
		final = end.Totals
	}
	r.final = final
	close(r.q)
	<-r.done
	return nil
}

func (r *Recorder) sessionTotals() (*events.Totals, error) {
	r.sessionMu.Lock()
	read := r.sessionTot
	r.sessionMu.Unlock()
	if read == nil {
		return &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}}, nil
	}
	return read()
}

func (r *Recorder) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		r.cfg.Log(fmt.Sprintf(format, args...))
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-r.q:
			if !ok {
				if r.seg != nil {
					r.closeSegment(r.final)
				}
				r.publish()
				return
			}
			r.write(&e)
		case now := <-tick.C:
			r.housekeep(now)
		}
	}
}

func (r *Recorder) write(e *events.Event) {
	if r.diskShort {
		r.diskDropped.Add(1)
		return
	}
	if r.seg == nil && !r.open(time.Now(), e.Time) {
		r.writeDropped.Add(1)
		return
	}
	if err := r.seg.w.WriteEvent(e); err != nil {
		r.writeDropped.Add(1)
		r.writeFailed(err)
		return
	}
	r.written.Add(1)
	r.seg.dests.Observe(e)
	r.enforce()
}

// bound is the most n uncompressed bytes can take in the file once
// compressed and flushed (zstd's worst case, blocks and frame).
func bound(n int64) int64 { return n + n/128 + 1024 }

// openSize is the most the open segment can take on disk once closed.
func (r *Recorder) openSize() int64 {
	st := r.seg.w.Stats()
	return st.FileBytes + bound(st.Pending) + footerReserve
}

func (r *Recorder) closedBytes() int64 {
	var n int64
	for _, s := range r.closed {
		n += s.size
	}
	return n
}

// flushAt is the uncompressed bytes after which the recorder flushes
// without waiting for the writer's timer: the bound counts unflushed
// records at their uncompressed size, which would close segments long
// before their compressed size fills them.
const flushAt = 128 << 10

// enforce keeps the directory under MaxSize, counting the open segment
// at the most it can take, and rotates a segment that is full.
func (r *Recorder) enforce() {
	if r.seg.w.Stats().Pending >= flushAt {
		if err := r.seg.w.Flush(); err != nil {
			r.writeFailed(err)
			return
		}
	}
	cur := r.openSize()
	if cur >= r.segMax {
		r.closeSegment(nil)
		return
	}
	r.makeRoom(cur)
}

// makeRoom deletes the oldest closed segments until they and need
// bytes fit in MaxSize.
func (r *Recorder) makeRoom(need int64) {
	for len(r.closed) > 0 && r.closedBytes()+need > r.cfg.MaxSize {
		r.deleteOldest()
	}
}

func (r *Recorder) deleteOldest() {
	s := r.closed[0]
	r.closed = r.closed[1:]
	if err := os.Remove(s.path); err != nil && !os.IsNotExist(err) {
		r.logf("flight recorder: remove %s: %v", s.path, unwrapPath(err))
	}
	// What it held is gone: the history starts where it ended.
	if s.end.After(r.history) {
		r.setHistory(s.end)
	}
}

func (r *Recorder) setHistory(t time.Time) {
	r.history = t
	if err := setHistoryStart(r.cfg.Dir, t); err != nil {
		r.logf("flight recorder: %v", unwrapPath(err))
	}
}

// open starts a segment at now, or at first, the time of the event it
// opens for, when that is earlier (it waited in the queue): a window
// from the segment's start holds every event in it.
func (r *Recorder) open(now, first time.Time) bool {
	if !r.spaceOK() {
		return false
	}
	r.makeRoom(footerReserve * 2)
	base := r.chained
	if base == nil {
		var err error
		if base, err = r.sessionTotals(); err != nil {
			r.logf("flight recorder: read the kernel's totals: %v; the segment opens without them", err)
			base = nil
		}
	}
	h := &record.Header{Description: r.desc}
	h.StartMonoNS = host.MonoNow()
	if !first.IsZero() && first.Before(now) {
		h.StartMonoNS -= min(uint64(now.Sub(first)), h.StartMonoNS)
		now = first
	}
	h.StartTime = now.UTC()
	h.Duration = ""
	path := filepath.Join(r.cfg.Dir, segmentName(now))
	w, err := record.CreateFile(path, false, h)
	if err != nil {
		r.writeFailed(err)
		return false
	}
	dropped := r.dropped()
	if r.chained != nil {
		dropped = r.chainedDropped
	}
	r.seg = &openSegment{segment: segment{path: path, start: now}, w: w, h: h, base: base, dropped: dropped}
	r.publish()
	return true
}

// closeSegment writes the open segment's footer: the kernel's totals
// now (final, or read now when nil) minus those at its open.
func (r *Recorder) closeSegment(final *events.Totals) {
	s := r.seg
	r.seg = nil
	var f *record.Footer
	if final == nil {
		var err error
		if final, err = r.sessionTotals(); err != nil {
			r.logf("flight recorder: read the kernel's totals: %v; %s closes without a footer", err, s.path)
		}
	}
	dropped := r.dropped()
	r.chained, r.chainedDropped = final, dropped
	if final != nil && s.base != nil {
		delta := subTotals(final, s.base)
		delta.LostUser = dropped - s.dropped
		end := &session.End{Time: time.Now().UTC(), MonoNS: host.MonoNow(), Totals: delta}
		f = record.NewFooter(end, s.h, s.w.Events(), record.DestinationsFromEvents(&s.dests), "events")
		if b, err := json.Marshal(f); err == nil {
			st := s.w.Stats()
			r.makeRoom(st.FileBytes + bound(st.Pending+int64(len(b))+1))
		}
	}
	if err := s.w.Close(f); err != nil {
		r.logf("flight recorder: %v", err)
	}
	if info, err := os.Stat(s.path); err == nil {
		s.size, s.end = info.Size(), info.ModTime()
		r.closed = append(r.closed, s.segment)
	}
	r.publish()
}

// dropped is the events kept out of segments while writing: queue
// full and failed writes (a short disk stops the chain of segments).
func (r *Recorder) dropped() uint64 { return r.queueDropped.Load() + r.writeDropped.Load() }

// subTotals is what the kernel counted between two readings of the
// session's totals.
func subTotals(now, then *events.Totals) *events.Totals {
	d := &events.Totals{ByKey: make(map[events.TotalsKey]events.TotalsValue)}
	for k, v := range now.ByKey {
		o := then.ByKey[k]
		v.Count -= min(o.Count, v.Count)
		v.Bytes -= min(o.Bytes, v.Bytes)
		v.Segs -= min(o.Segs, v.Segs)
		if v != (events.TotalsValue{}) {
			d.ByKey[k] = v
		}
	}
	d.LostKernel = now.LostKernel - min(then.LostKernel, now.LostKernel)
	d.Unstreamed = now.Unstreamed - min(then.Unstreamed, now.Unstreamed)
	d.Uncounted = now.Uncounted - min(then.Uncounted, now.Uncounted)
	return d
}

// writeFailed stops writing after an error: a full disk is a short disk.
func (r *Recorder) writeFailed(err error) {
	r.chained = nil
	if r.seg != nil {
		s := r.seg
		r.seg = nil
		s.w.Close(nil)
		if info, serr := os.Stat(s.path); serr == nil {
			s.size, s.end = info.Size(), info.ModTime()
			r.closed = append(r.closed, s.segment)
		}
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		r.setShort(true, fmt.Sprintf("flight recorder: %s is full: stopped writing; events are counted as dropped until space returns", r.cfg.Dir))
		return
	}
	r.logf("flight recorder: %v", err)
	r.publish()
}

// spaceOK checks the file system's free space against the floor.
func (r *Recorder) spaceOK() bool {
	free, err := r.cfg.freeBytes(r.cfg.Dir)
	if err != nil {
		return !r.diskShort
	}
	// Resuming needs a segment's worth above the floor, so that the
	// recorder does not flap at its edge.
	resume := r.cfg.MinFree + uint64(r.segMax)
	switch {
	case !r.diskShort && free < r.cfg.MinFree:
		if r.seg != nil {
			r.closeSegment(nil)
		}
		r.setShort(true, fmt.Sprintf("flight recorder: %d MiB free on the file system of %s, below the floor of %d MiB: stopped writing; events are counted as dropped until space returns",
			free>>20, r.cfg.Dir, r.cfg.MinFree>>20))
	case r.diskShort && free >= resume:
		r.setShort(false, fmt.Sprintf("flight recorder: %d MiB free on the file system of %s: writing again", free>>20, r.cfg.Dir))
	}
	return !r.diskShort
}

func (r *Recorder) setShort(short bool, msg string) {
	if r.diskShort == short {
		return
	}
	r.diskShort = short
	// What the kernel counts while nothing is written belongs to no
	// segment.
	r.chained = nil
	r.logf("%s", msg)
	r.publish()
}

// housekeep runs every second: the free space, a segment's age, and
// the segments older than MaxAge.
func (r *Recorder) housekeep(now time.Time) {
	r.spaceOK()
	if r.seg != nil && now.Sub(r.seg.start) >= r.segSpan {
		r.closeSegment(nil)
	}
	for len(r.closed) > 0 && now.Sub(r.closed[0].end) > r.cfg.MaxAge {
		r.deleteOldest()
	}
	r.publish()
}

// publish updates what the metrics show.
func (r *Recorder) publish() {
	sh := shown{bytes: r.closedBytes(), segments: len(r.closed), diskShort: r.diskShort}
	if r.seg != nil {
		sh.bytes += r.seg.w.Stats().FileBytes
		sh.segments++
	}
	sh.oldest = r.history
	r.mu.Lock()
	r.shown = sh
	r.mu.Unlock()
}
