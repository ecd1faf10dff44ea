package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
)

// tlpThenBlackHole is a connection that had a tail loss probe while the
// path was healthy (acknowledged: retrans 0), then, 3 s later, a stuck
// segment retransmitted with backoff until the kernel gave up.
func tlpThenBlackHole(cookie uint64, start uint64) []events.Event {
	evs := blackHoleEvents(cookie, start+3*sec, 5)
	rto := 200 * time.Millisecond
	for i := range evs {
		if evs[i].Kind == events.KindRetransmit {
			evs[i].Seq, evs[i].RTO, evs[i].Backoff = 5000, rto, uint8(i)
			rto *= 2
		}
	}
	tlp := evs[0]
	tlp.Mono, tlp.Seq, tlp.RTO, tlp.Backoff, tlp.Retransmits = start, 1000, 200*time.Millisecond, 0, 0
	return append([]events.Event{tlp}, evs...)
}

// Report, diff and diagnosis give one time to failure, measured over the
// retransmits of the data that was never acknowledged: the healthy
// probe before it is not part of the failure.
func TestTimeToFailureIgnoresHealthyProbe(t *testing.T) {
	var evs []events.Event
	for i := range 5 {
		evs = append(evs, tlpThenBlackHole(uint64(200+i), 1001*sec+uint64(i)*sec/10)...)
	}
	rec, err := Load(writeRec(t, "r.jsonl", recOpts{footer: true}, evs), Options{})
	if err != nil {
		t.Fatal(err)
	}
	spans := map[uint64]time.Duration{}
	for _, d := range rec.Diagnoses {
		if d.Rule == diagnose.RuleBlackHole {
			spans[d.Cookie] = d.Evidence.Timeout
		}
	}
	if len(spans) != 5 {
		t.Fatalf("black-hole diagnoses for %d connections, want 5: %+v", len(spans), rec.Diagnoses)
	}
	rep := Build(rec, BuildOptions{})
	if len(rep.FailedConns) != 5 {
		t.Fatalf("failed connections %+v", rep.FailedConns)
	}
	for _, c := range rep.FailedConns {
		got := time.Duration(c.TTFSec * 1e9)
		if want := spans[c.Cookie]; got != want {
			t.Errorf("connection %d: report says %v to failure, its diagnosis %v", c.Cookie, got, want)
		}
		if got > 7*time.Second {
			t.Errorf("connection %d: %v to failure counts the healthy probe 3 s before the stuck segment", c.Cookie, got)
		}
	}
	d := Compare(rec, rec)
	if want := spans[200]; d.TTF.Before == nil || d.TTF.Before.Max != want {
		t.Errorf("diff time to failure %+v, want max %v as diagnosed", d.TTF.Before, want)
	}
}

// Time to failure has one definition (diagnose.TimeToFailureMeaning) and
// one measure (diagnose.TimeToFailure): from the first retransmission of
// the data never acknowledged to the error report. The text report and
// the diff say so in the same words, and give that figure.
func TestTimeToFailureOneDefinition(t *testing.T) {
	var evs []events.Event
	firstRtx := map[uint64]uint64{}
	errAt := map[uint64]uint64{}
	for i := range 5 {
		cookie := uint64(300 + i)
		cevs := blackHoleEvents(cookie, 1001*sec+uint64(i)*sec/10, 5)
		rto := 200 * time.Millisecond
		for j := range cevs {
			if cevs[j].Kind == events.KindRetransmit {
				cevs[j].RTO, cevs[j].Backoff = rto, uint8(j)
				rto *= 2
			}
		}
		for _, e := range cevs {
			switch {
			case e.Kind == events.KindRetransmit && firstRtx[cookie] == 0:
				firstRtx[cookie] = e.Mono
			case e.Kind == events.KindErrorReport:
				errAt[cookie] = e.Mono
			}
		}
		evs = append(evs, cevs...)
	}
	rec, err := Load(writeRec(t, "r.jsonl", recOpts{footer: true}, evs), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range rec.Diagnoses {
		ttf, ok := diagnose.TimeToFailure(&d)
		if !ok {
			continue
		}
		n++
		if want := time.Duration(errAt[d.Cookie] - firstRtx[d.Cookie]); ttf != want {
			t.Errorf("connection %d: time to failure %v, want %v from its first retransmission to its error report", d.Cookie, ttf, want)
		}
		if c := rec.Conns[d.Cookie]; c == nil || c.TTF != ttf {
			t.Errorf("connection %d: the report's time to failure %+v differs from its diagnosis's %v", d.Cookie, c, ttf)
		}
	}
	if n != 5 {
		t.Fatalf("%d diagnoses with a time to failure, want 5", n)
	}
	var text, diff bytes.Buffer
	if err := WriteText(&text, rec, Build(rec, BuildOptions{})); err != nil {
		t.Fatal(err)
	}
	if err := WriteDiffText(&diff, Compare(rec, rec)); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"report": text.String(), "diff": diff.String()} {
		if !strings.Contains(out, diagnose.TimeToFailureMeaning) {
			t.Errorf("%s does not define time to failure as %q:\n%s", name, diagnose.TimeToFailureMeaning, out)
		}
	}
}
