package report

import (
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
)

// A system-wide recording: the header holds sendtrace's own namespace
// (tcp_retries2=15), the footer the client's (3), read when its first
// event was seen. Replaying it, the diagnosis names the client's recorded
// value, not a guess from the time the connection took, although the
// footer comes after the events.
func TestReplayUsesFooterSysctls(t *testing.T) {
	const clientNS = 4026532174
	var evs []events.Event
	rto := 204 * time.Millisecond
	at := 1001 * sec
	for i, gap := range []time.Duration{0, 416, 832, 1668} {
		at += uint64(gap * time.Millisecond)
		e := blackHoleEvents(300, at, 1)[0]
		e.RTO, e.Backoff, e.RetransKind = rto<<i, uint8(i), events.RetransRTO
		evs = append(evs, e)
	}
	report := blackHoleEvents(300, at+uint64(3424*time.Millisecond), 1)[1]
	evs = append(evs, report)
	for i := range evs {
		evs[i].Netns = clientNS
	}
	ns := []session.NetnsSysctls{{Netns: session.Netns{Inode: clientNS, PID: 7}, Comm: "app", Sysctls: map[string]string{"net.ipv4.tcp_retries2": "3"}}}
	path := writeRec(t, "sys.jsonl", recOpts{footer: true, sysctls: map[string]string{"net.ipv4.tcp_retries2": "15"}, netns: ns}, evs)
	rec, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d *diagnose.Diagnosis
	for i := range rec.Diagnoses {
		if rec.Diagnoses[i].Rule == diagnose.RuleBlackHole {
			d = &rec.Diagnoses[i]
		}
	}
	if d == nil {
		t.Fatalf("no black-hole diagnosis: %+v", rec.Diagnoses)
	}
	t.Log(d.Evidence.Setting)
	if want := "net.ipv4.tcp_retries2=3, as recorded for net:[4026532174]"; !strings.HasPrefix(d.Evidence.Setting, want) ||
		!strings.Contains(d.Evidence.Setting, "after 4 retransmissions") {
		t.Errorf("setting %q, want it to start %q", d.Evidence.Setting, want)
	}
}
