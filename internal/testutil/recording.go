package testutil

import (
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
)

// ReadRecording reads every event of a recording and its footer (nil when
// it has none), failing the test on any error.
func ReadRecording(t testing.TB, path string) ([]events.Event, *record.Footer) {
	t.Helper()
	rd, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var out []events.Event
	for {
		var e events.Event
		ok, err := rd.Next(&e)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out, rd.Footer
		}
		out = append(out, e)
	}
}
