package tracer

import (
	"sync"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/loader"
	"github.com/sendtrace/sendtrace/internal/sockowner"
)

// ownerLookup attributes the events the kernel sent up without an owner
// under a process filter (OWNER_PENDING): it finds the socket's holder
// through /proc, keeps the event when the filters select it and drops it
// otherwise, and writes the answer back so the kernel attributes or
// filters that socket's later events itself. The kernel counted those
// events under loader.PendingPID; rekey moves each received one to its
// owner's totals, or out of them when it was not the session's.
type ownerLookup struct {
	mu     sync.Mutex
	finder *sockowner.Finder
	write  func(ino uint64, pid uint32, comm string, cgroup uint64) error
	// answers holds each socket's answer until the kernel takes it: the
	// socket's events already in the ring buffer need the same one. An
	// answer older than answerTTL is forgotten here and in the kernel, so
	// that neither grows with the sockets a long session sees once.
	answers   map[uint64]answer
	forget    func(ino uint64) error
	lastSweep time.Time
	moves     map[move]events.TotalsValue
	// byProc counts the events received whose owner was found through
	// /proc, here or by the kernel from an answer written back.
	byProc uint64
	// listeners writes listeners' owners when the kernel's seeding
	// cannot (nil when it can); written is what it wrote last time.
	listeners func([]loader.ListenerOwner, map[[2]uint32]bool) (map[[2]uint32]bool, error)
	written   map[[2]uint32]bool
}

// seedListeners gives the selected processes' listeners owners for the
// sockets accepted from them, when the kernel's seeding is degraded.
func (l *ownerLookup) seedListeners() error {
	if l == nil || l.listeners == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loader.ListenerOwner
	for _, ln := range l.finder.Listeners() {
		out = append(out, loader.ListenerOwner{Netns: ln.Netns, Port: ln.Port, PID: ln.Proc.PID, Comm: ln.Proc.Comm,
			Cgroup: ln.Proc.Cgroup, Ambiguous: ln.Ambiguous})
	}
	written, err := l.listeners(out, l.written)
	l.written = written
	return err
}

type answer struct {
	p  *sockowner.Proc // nil: not the session's
	at time.Time
}

// answerTTL is how long an answer is kept for the socket's events in
// flight; a socket heard from again later is simply asked about again.
const answerTTL = 10 * time.Second

// move is a pending event's totals key and its owner's (zero: not the
// session's).
type move struct{ from, to events.TotalsKey }

func newOwnerLookup(f *sockowner.Finder, write func(uint64, uint32, string, uint64) error, forget func(uint64) error) *ownerLookup {
	return &ownerLookup{finder: f, write: write, forget: forget, answers: map[uint64]answer{}, moves: map[move]events.TotalsValue{}}
}

// sweep forgets the answers older than answerTTL.
func (l *ownerLookup) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Second {
		return
	}
	l.lastSweep = now
	for ino, a := range l.answers {
		if now.Sub(a.at) > answerTTL {
			delete(l.answers, ino)
			_ = l.forget(ino)
		}
	}
}

// resolve attributes e, the event of socket inode ino, and says whether
// the filters keep it.
func (l *ownerLookup) resolve(e *events.Event, ino uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.sweep(now)
	a, answered := l.answers[ino]
	p := a.p
	if !answered {
		if found, ok := l.finder.Find(ino, e.Mono); ok {
			p = &found
		}
		l.answers[ino] = answer{p: p, at: now}
		var err error
		if p != nil {
			err = l.write(ino, p.PID, p.Comm, p.Cgroup)
		} else {
			err = l.write(ino, 0, "", 0)
		}
		if err != nil {
			// Not written: the socket's next event asks again.
			delete(l.answers, ino)
		}
	}
	e.PID = loader.PendingPID
	from := events.TotalsKeyOf(e)
	v := events.TotalsValue{Count: 1, Bytes: uint64(e.Bytes), Segs: uint64(e.Segs)}
	var to events.TotalsKey
	if p != nil {
		e.PID, e.TID, e.Comm, e.Cgroup = p.PID, p.PID, p.Comm, p.Cgroup
		e.OwnerKnown, e.OwnerVia = true, events.OwnerViaProc
		to = events.TotalsKeyOf(e)
	} else {
		e.PID = 0
	}
	m := l.moves[move{from, to}]
	m.Count, m.Bytes, m.Segs = m.Count+v.Count, m.Bytes+v.Bytes, m.Segs+v.Segs
	l.moves[move{from, to}] = m
	return p != nil
}

// rekey moves the pending events' counts to their owners, or out of the
// totals when they were not the session's; what stays pending was lost
// before its owner was looked up.
func (l *ownerLookup) rekey(t *events.Totals) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for m, v := range l.moves {
		from := t.ByKey[m.from]
		n := min(v.Count, from.Count)
		from.Count -= n
		from.Bytes -= min(v.Bytes, from.Bytes)
		from.Segs -= min(v.Segs, from.Segs)
		if from.Count == 0 && from.Segs == 0 {
			delete(t.ByKey, m.from)
		} else {
			t.ByKey[m.from] = from
		}
		if m.to != (events.TotalsKey{}) {
			to := t.ByKey[m.to]
			to.Count += n
			to.Bytes += v.Bytes
			to.Segs += v.Segs
			t.ByKey[m.to] = to
		}
	}
	for k, v := range t.ByKey {
		if k.PID == loader.PendingPID {
			t.OwnersUnresolved += v.Count
			delete(t.ByKey, k)
		}
	}
	t.OwnersByProc = l.byProc
}

// counted notes an event attributed through /proc.
func (l *ownerLookup) counted(e *events.Event) {
	if e.OwnerVia == events.OwnerViaProc {
		l.mu.Lock()
		l.byProc++
		l.mu.Unlock()
	}
}

// totals reads the kernel's totals with the pending events moved to their
// owners; with no lookup, as they are.
func (l *ownerLookup) totals(read func() (*events.Totals, error)) func() (*events.Totals, error) {
	if l == nil {
		return read
	}
	return func() (*events.Totals, error) {
		t, err := read()
		if err == nil {
			l.rekey(t)
		}
		return t, err
	}
}
