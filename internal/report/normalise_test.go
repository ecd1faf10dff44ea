package report

import (
	"strings"
	"testing"
)

// The same fault recorded for 3 s and for 30 s must not look like a
// change: rates are per unit of traffic, never per minute of recording.
func TestDiffIgnoresRecordingLength(t *testing.T) {
	a, err := Load(writeRec(t, "a.jsonl", recOpts{footer: true, sends: 1000}, conns(3, 5)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(writeRec(t, "b.jsonl", recOpts{footer: true, sends: 1000}, conns(3, 5)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.Footer.DurationSec = 10 * a.Footer.DurationSec
	d := Compare(a, b)
	var names []string
	for _, m := range d.Metrics {
		names = append(names, m.Name)
		if strings.Contains(m.Name, "per minute") {
			t.Errorf("metric %q depends on how long each recording ran", m.Name)
		}
	}
	for _, want := range []string{"failed sends per connection", "retransmitted segments per connection"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("no %q metric among %q", want, names)
		}
	}
}
