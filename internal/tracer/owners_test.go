package tracer

import (
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/sockowner"
)

// A session that hears once from many sockets it does not own keeps no
// answer about them past answerTTL, here or in the kernel.
func TestOwnerAnswersForgotten(t *testing.T) {
	var n uint64
	f := &sockowner.Finder{ProcRoot: t.TempDir(), Filters: session.Filters{PIDs: []uint32{1}}, Now: func() uint64 { n++; return n }}
	written, forgotten := map[uint64]bool{}, map[uint64]bool{}
	l := newOwnerLookup(f,
		func(ino uint64, _ uint32, _ string, _ uint64) error { written[ino] = true; return nil },
		func(ino uint64) error { forgotten[ino] = true; return nil })
	for ino := uint64(1); ino <= 100; ino++ {
		e := events.Event{Kind: events.KindRetransmit, Mono: 0}
		if l.resolve(&e, ino) {
			t.Fatalf("socket %d held by no selected process was kept", ino)
		}
	}
	if len(written) != 100 || len(l.answers) != 100 {
		t.Fatalf("%d answers written, %d kept; want 100 each", len(written), len(l.answers))
	}
	for ino := range l.answers {
		a := l.answers[ino]
		a.at = a.at.Add(-2 * answerTTL)
		l.answers[ino] = a
	}
	l.lastSweep = time.Time{}
	e := events.Event{Kind: events.KindRetransmit}
	l.resolve(&e, 1000)
	if len(l.answers) != 1 || len(forgotten) != 100 {
		t.Errorf("after the sweep %d answers are kept and %d forgotten in the kernel; want 1 and 100", len(l.answers), len(forgotten))
	}
}
