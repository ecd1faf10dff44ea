package events

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestAppendTimeUTCMatchesRFC3339Nano(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{
		time.Unix(0, 0), time.Unix(1, 0), time.Unix(1, 1), time.Unix(1, 100), time.Unix(1, 999_999_999),
		time.Date(2026, 11, 22, 2, 14, 45, 123_000_000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 5*3600+1800)),
		{},
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for range 100000 {
		times = append(times, time.Unix(r.Int64N(1<<35), r.Int64N(1e9)))
	}
	for _, tm := range times {
		want := string(tm.UTC().AppendFormat(nil, time.RFC3339Nano))
		if got := string(appendTimeUTC(nil, tm)); got != want {
			t.Fatalf("%v: got %s, want %s", tm, got, want)
		}
	}
}

func BenchmarkAppendTimeUTC(b *testing.B) {
	tm := time.Date(2026, 11, 22, 2, 14, 45, 123_456_789, time.UTC)
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = appendTimeUTC(buf[:0], tm)
	}
}
