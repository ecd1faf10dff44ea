package report

import (
	"math"
	"slices"
	"time"
)

// Percentiles summarise times to failure.
type Percentiles struct {
	N   int           `json:"n"`
	Min time.Duration `json:"-"`
	P50 time.Duration `json:"-"`
	P95 time.Duration `json:"-"`
	Max time.Duration `json:"-"`

	MinSec float64 `json:"min_s"`
	P50Sec float64 `json:"p50_s"`
	P95Sec float64 `json:"p95_s"`
	MaxSec float64 `json:"max_s"`
}

// percentiles uses the nearest-rank method: every value it reports was
// really observed, which matters when a handful of connections are all
// there is.
func percentiles(ds []time.Duration) *Percentiles {
	if len(ds) == 0 {
		return nil
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	p := &Percentiles{N: len(s), Min: s[0], P50: rank(0.50), P95: rank(0.95), Max: s[len(s)-1]}
	p.MinSec, p.P50Sec, p.P95Sec, p.MaxSec = secs(p.Min), secs(p.P50), secs(p.P95), secs(p.Max)
	return p
}

func secs(d time.Duration) float64 { return math.Round(d.Seconds()*1e6) / 1e6 }

// Significance thresholds for diff. They are deliberately simple so that a
// person can check them by hand:
//
//   - A rate (failed sends per 1,000 sends, retransmits per MB, an errno's
//     rate) is compared only when both recordings have at least MinCount
//     events of it, and its change is called real only when it exceeds two
//     standard errors of the difference, treating each count as Poisson
//     (sqrt(n)/exposure per side). Below that the change is shown as
//     "too few" or "within noise", never as a bare percentage.
//   - Times to failure are compared only when both recordings have at
//     least MinTTFSamples failed connections, and a change is called real
//     only when the two sets do not overlap (every connection in one failed
//     sooner than every connection in the other). With five on each side
//     that happens by chance with probability 2/252 < 1%.
const (
	MinCount      = 20
	MinTTFSamples = 5
)

// Verdict words used in text and JSON.
const (
	VerdictChanged   = "changed"
	VerdictSame      = "within noise"
	VerdictTooFew    = "too few"
	VerdictUnknown   = "unknown"
	VerdictUnchanged = "unchanged"
)

// rateVerdict judges counts a and b over exposures ea and eb (sends, MB or
// minutes). Exposures must be positive.
func rateVerdict(a, b uint64, ea, eb float64) string {
	if a < MinCount || b < MinCount {
		// One side may be zero with the other large (a failure mode
		// appearing or vanishing): that is real when the other side alone
		// clears both bars.
		lo, hi := min(a, b), max(a, b)
		if lo == 0 && hi >= MinCount {
			return VerdictChanged
		}
		return VerdictTooFew
	}
	ra, rb := float64(a)/ea, float64(b)/eb
	se := math.Sqrt(float64(a)/(ea*ea) + float64(b)/(eb*eb))
	if math.Abs(ra-rb) > 2*se {
		return VerdictChanged
	}
	return VerdictSame
}

func ttfVerdict(a, b *Percentiles) string {
	if a == nil || b == nil || a.N < MinTTFSamples || b.N < MinTTFSamples {
		return VerdictTooFew
	}
	if a.Max < b.Min || b.Max < a.Min {
		return VerdictChanged
	}
	return VerdictSame
}
