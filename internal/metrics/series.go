package metrics

import (
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/procstate"
)

// triple is one series' labels: the metric's own label (errno, kind,
// reason or direction), the workload, and the peer ("" without peers).
type triple [3]string

// seriesCounts are the counts of the metrics that come from the kernel's totals.
type seriesCounts struct {
	sends, retrans, drops, resets map[triple]uint64
}

func newSeries() seriesCounts {
	return seriesCounts{sends: map[triple]uint64{}, retrans: map[triple]uint64{}, drops: map[triple]uint64{}, resets: map[triple]uint64{}}
}

// add counts one totals entry under workload. s.mu is held.
func (s *Sink) add(out *seriesCounts, k events.TotalsKey, v events.TotalsValue, workload string) {
	var peer string
	if s.cfg.Peer.enabled() {
		peer = s.peerLabel(k.Dst)
	}
	switch k.Kind {
	case events.KindSendError:
		out.sends[triple{events.ErrnoName(k.Errno), workload, peer}] += v.Count
	case events.KindRetransmit:
		// Segments, not events: one event may carry many (TSO), and
		// untraced segments have no event at all.
		out.retrans[triple{k.Detail, workload, peer}] += v.Segs
	case events.KindDrop:
		out.drops[triple{k.Detail, workload, peer}] += v.Count
	case events.KindReceiveReset:
		out.resets[triple{"received", workload, peer}] += v.Count
	case events.KindSendReset:
		out.resets[triple{"sent", workload, peer}] += v.Count
	}
}

// addAll adds every count of from whose workload is still exported.
func (s *Sink) addAll(out *seriesCounts, from *seriesCounts) {
	for _, m := range [...][2]map[triple]uint64{{out.sends, from.sends}, {out.retrans, from.retrans}, {out.drops, from.drops}, {out.resets, from.resets}} {
		for k, n := range m[1] {
			if s.liveLabel(k[1]) {
				m[0][k] += n
			}
		}
	}
}

// forget drops the retired counts of a workload whose series expired.
func (r *seriesCounts) forget(workload string) {
	for _, m := range [...]map[triple]uint64{r.sends, r.retrans, r.drops, r.resets} {
		for k := range m {
			if k[1] == workload {
				delete(m, k)
			}
		}
	}
}

// retireAfter is how long a process has been gone before its counts are
// retired under its workload: the events that name a process that exited
// before a poll could (batched in the kernel for a moment) arrive first.
const retireAfter = 5 * time.Second

// forgetDead is how long a process that exited keeps its workload name
// for counts that still come in: its sockets outlive it (a FIN or a
// retransmit of an orphaned socket) for up to tcp_retries2's minutes.
// With --series-ttl it is that TTL: a workload with no live process has
// no series after it anyway.
func (s *Sink) forgetDead() time.Duration {
	if s.cfg.SeriesTTL > 0 {
		return max(s.cfg.SeriesTTL, retireAfter)
	}
	return 20 * time.Minute
}

// retireExited moves the kernel's totals of processes that have exited
// into s.retired, under their workload (or drops them, when the
// workload's series expired), and forgets processes long dead:
// the kernel's map and the sink's own maps then hold the processes that
// live, however many come and go in weeks of serving. s.mu is held.
func (s *Sink) retireExited(now time.Time) {
	inTotals := make(map[uint32]bool)
	for k := range s.totals.ByKey {
		inTotals[k.PID] = true
	}
	dead := make(map[uint32]bool)
	for pid, p := range s.pids {
		// A process found gone stays gone: its pid is not looked up
		// again, so thousands of exited processes cost no work a poll.
		if p.deadSince.IsZero() {
			if procstate.Alive(int(pid)) {
				if !p.expired {
					s.touch(p.label, now)
				}
				continue
			}
			p.deadSince = now
		}
		switch {
		case inTotals[pid] && now.Sub(p.deadSince) >= retireAfter:
			dead[pid] = true
		case now.Sub(p.deadSince) > s.forgetDead():
			delete(s.pids, pid)
		}
	}
	if len(dead) == 0 || s.retire == nil {
		return
	}
	pids := make([]uint32, 0, len(dead))
	for pid := range dead {
		pids = append(pids, pid)
	}
	gone, err := s.retire(pids)
	if err != nil {
		s.readErrors++
		if gone == nil {
			return
		}
	}
	for k, v := range gone.ByKey {
		// The counts of a workload whose series expired are not exported
		// any more; they leave the kernel's map all the same.
		if p := s.pids[k.PID]; !p.expired {
			s.add(&s.retired, k, v, p.label)
		}
	}
	// What was retired is no longer in the kernel's map; the totals read
	// before must not count it a second time.
	for k := range s.totals.ByKey {
		if dead[k.PID] {
			delete(s.totals.ByKey, k)
			delete(s.counts, k)
		}
	}
}
