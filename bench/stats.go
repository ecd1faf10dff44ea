package main

import (
	"fmt"
	"sort"
)

// spread is the median, min and max of a sample.
type spread struct {
	n                int
	median, min, max float64
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{n: len(s), median: m, min: s[0], max: s[len(s)-1]}
}

// pct prints a ratio as a percentage with one decimal.
func pct(r float64) string { return fmt.Sprintf("%.1f%%", 100*r) }

// rate prints events or sends per second compactly.
func rate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

func mib(kib uint64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
