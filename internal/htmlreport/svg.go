package htmlreport

import (
	"math"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/format"
)

// px is an SVG coordinate, printed with one decimal so that the page
// never holds an exponent or a long fraction.
type px float64

func (p px) String() string { return strconv.FormatFloat(float64(p), 'f', 1, 64) }

// scale maps a domain linearly onto [lo, hi] pixels.
type scale struct {
	d0, d1 float64
	lo, hi float64
}

func (s scale) at(v float64) px {
	if s.d1 == s.d0 {
		return px(s.lo)
	}
	f := (v - s.d0) / (s.d1 - s.d0)
	return px(s.lo + f*(s.hi-s.lo))
}

// axisTick is one labelled position on an axis.
type axisTick struct {
	At    px
	Label string
}

// niceStep returns a step of 1, 2 or 5 times a power of ten that cuts span
// into about n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// timeTicks labels a time axis given in seconds from some origin.
func timeTicks(s scale, n int) []axisTick {
	step := niceStep(s.d1-s.d0, n)
	var out []axisTick
	for v := math.Ceil(s.d0/step) * step; v <= s.d1+step/1e6; v += step {
		out = append(out, axisTick{At: s.at(v), Label: signedDuration(time.Duration(v * 1e9))})
	}
	return out
}

// countTicks labels a count or byte axis.
func countTicks(s scale, n int, unit string) []axisTick {
	step := max(1, niceStep(s.d1-s.d0, n))
	var out []axisTick
	for v := math.Ceil(s.d0/step) * step; v <= s.d1+step/1e6; v += step {
		out = append(out, axisTick{At: s.at(v), Label: humanCount(v) + unit})
	}
	return out
}

func humanCount(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// signedDuration is an offset from an origin: "+1.2s", "-300ms", "0".
func signedDuration(d time.Duration) string {
	switch {
	case d.Abs() < time.Microsecond:
		return "0"
	case d < 0:
		return "-" + format.Duration(-d)
	}
	return "+" + format.Duration(d)
}
