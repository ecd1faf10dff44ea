package actorreport

import (
	"testing"
	"time"
)

// A parked process looks often at first, then settles at 100 ms.
func TestNextPause(t *testing.T) {
	var got []time.Duration
	var p time.Duration
	for range 7 {
		p = NextPause(p)
		got = append(got, p)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 100, 100}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("pauses %v, want %v ms", got, want)
		}
	}
}
