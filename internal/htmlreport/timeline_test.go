package htmlreport

import (
	"html"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/report"
)

// A tail loss probe resends the newest segment first, 57 kB above the
// oldest one the timeouts go back to (as in a black-holed upload). The
// time–sequence graph's zero is the lowest sequence drawn, so its axis
// never runs below zero, and every segment lies inside the panel.
func TestSequenceAxisStartsAtLowestSeq(t *testing.T) {
	una := uint32(4294950000) // close to the wrap, as sequence space allows
	mono := uint64(1000 * time.Second)
	ev := func(at time.Duration, seq, bytes uint32, kind events.RetransKind) events.Event {
		return events.Event{Mono: mono + uint64(at), Kind: events.KindRetransmit, Cookie: 7, Protocol: events.ProtoTCP,
			State: events.StateEstablished, Seq: seq, Bytes: bytes, MSS: 1448, RetransKind: kind, RTO: 204 * time.Millisecond}
	}
	evs := []events.Event{
		ev(0, una+56472, 872, events.RetransTLP),
		ev(208*time.Millisecond, una, 1448, events.RetransRTO),
		ev(636*time.Millisecond, una, 1448, events.RetransRTO),
		ev(1468*time.Millisecond, una, 1448, events.RetransRTO),
	}
	v := drawTimeline(7, evs)
	p := v.Panels[0]
	if !strings.Contains(p.Title, "sequence") {
		t.Fatalf("first panel %q, want the time–sequence graph", p.Title)
	}
	if !strings.Contains(p.Title, "4294950000") {
		t.Errorf("panel title %q does not name the lowest sequence drawn (%d) as its zero", p.Title, una)
	}
	if len(p.YTicks) == 0 || p.YTicks[0].Label != "0" {
		t.Errorf("y ticks %+v: want the axis to start at 0", p.YTicks)
	}
	for _, tk := range p.YTicks {
		if strings.HasPrefix(tk.Label, "-") {
			t.Errorf("y tick %q below zero", tk.Label)
		}
	}
	bottom, top := p.Top+p.Height, p.Top
	for _, m := range v.Marks {
		if !strings.Contains(m.Class, "mark-retransmit") {
			continue
		}
		if m.Y < top-0.05 || m.Y > bottom+0.05 {
			t.Errorf("retransmit mark at y %v outside the panel [%v, %v]", m.Y, top, bottom)
		}
	}
}

// The report page and the diff page define time to failure as report
// and diff do (diagnose.TimeToFailureMeaning), and show the figure the
// diagnosis measured.
func TestPagesDefineTimeToFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.jsonl")
	synthetic(t, path, "client", 6, 5)
	page, err := os.ReadFile(writePage(t, path, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := report.Load(path, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var diff strings.Builder
	if err := WriteDiff(&diff, rec, rec); err != nil {
		t.Fatal(err)
	}
	want := html.EscapeString(diagnose.TimeToFailureMeaning)
	for name, s := range map[string]string{"report page": string(page), "diff page": diff.String()} {
		if !strings.Contains(s, want) {
			t.Errorf("the %s does not define time to failure as %q", name, diagnose.TimeToFailureMeaning)
		}
	}
	rep := report.Build(rec, report.BuildOptions{})
	if rep.TTF == nil || !strings.Contains(string(page), "p50 "+format.Duration(rep.TTF.P50)) {
		t.Errorf("the report page does not give the median time to failure %+v", rep.TTF)
	}
}
