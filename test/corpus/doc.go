package corpus

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sendtrace/sendtrace/internal/diagnose"
)

// Targets of the diagnosis, as docs/diagnosis.md states them.
const (
	maxWrongMediumPct = 2.0
	minCorrectPct     = 95.0
)

// Totals are a corpus run's counts against the targets.
type Totals struct {
	Cases, Recorded, Correct, Unknown, WrongHigh, WrongMedium, Missing int
}

// Count adds up results.
func Count(rs []Result) Totals {
	var t Totals
	for _, r := range rs {
		t.Cases++
		if r.Err != nil {
			t.Missing++
			continue
		}
		t.Recorded++
		switch r.Verdict.Class {
		case Right:
			t.Correct++
		case Unknown:
			t.Unknown++
		case Wrong:
			if r.Verdict.Confidence == diagnose.High {
				t.WrongHigh++
			} else {
				t.WrongMedium++
			}
		}
	}
	return t
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) * 100 / float64(of)
}

// WriteTargets writes the targets table, in markdown.
func WriteTargets(w io.Writer, t Totals) {
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	fmt.Fprintf(w, "| target | measured | |\n|---|---|---|\n")
	fmt.Fprintf(w, "| 0 wrong at high confidence | %d | %s |\n", t.WrongHigh, mark(t.WrongHigh == 0))
	// Of every case: one the lab failed to record is not named correctly.
	fmt.Fprintf(w, "| at most %.0f%% wrong at medium confidence | %d of %d (%.1f%%) | %s |\n", maxWrongMediumPct, t.WrongMedium, t.Cases,
		pct(t.WrongMedium, t.Cases), mark(pct(t.WrongMedium, t.Cases) <= maxWrongMediumPct))
	fmt.Fprintf(w, "| at least %.0f%% named correctly | %d of %d (%.1f%%) | %s |\n", minCorrectPct, t.Correct, t.Cases,
		pct(t.Correct, t.Cases), mark(pct(t.Correct, t.Cases) >= minCorrectPct))
	fmt.Fprintf(w, "| unknown (no diagnosis, or low confidence only): not wrong, not correct | %d | |\n", t.Unknown)
	if t.Missing > 0 {
		fmt.Fprintf(w, "| cases the lab did not record | %d | |\n", t.Missing)
	}
}

// WriteMatrix writes the confusion matrix, in markdown: a row for each
// diagnosis a case was answered with (none: no diagnosis), a column for
// each true cause, and in each cell the cases by the confidence of their
// deciding diagnosis (h, m, l; a bare count for none). A case's deciding
// diagnosis is its most confident wrong one if any, else its cause's.
func WriteMatrix(w io.Writer, rs []Result) {
	var cols []string
	for _, c := range Causes {
		if slices.ContainsFunc(rs, func(r Result) bool { return r.Case.Cause == c }) {
			cols = append(cols, c)
		}
	}
	cell := map[string]map[string]map[string]int{}
	for _, r := range rs {
		if r.Err != nil {
			continue
		}
		v := r.Verdict
		if cell[v.Rule] == nil {
			cell[v.Rule] = map[string]map[string]int{}
		}
		if cell[v.Rule][r.Case.Cause] == nil {
			cell[v.Rule][r.Case.Cause] = map[string]int{}
		}
		cell[v.Rule][r.Case.Cause][v.Confidence]++
	}
	fmt.Fprintf(w, "| diagnosis \\ true cause | %s |\n|---|%s\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
	for _, rule := range append(slices.Clone(diagnose.Rules), None) {
		if cell[rule] == nil {
			continue
		}
		row := []string{"`" + rule + "`"}
		for _, c := range cols {
			n := cell[rule][c]
			var parts []string
			for _, k := range []string{diagnose.High, diagnose.Medium, diagnose.Low, ""} {
				if n[k] == 0 {
					continue
				}
				if k == "" {
					parts = append(parts, fmt.Sprint(n[k]))
				} else {
					parts = append(parts, fmt.Sprintf("%d%c", n[k], k[0]))
				}
			}
			row = append(row, strings.Join(parts, " "))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
}

// Agreement compares the answers of the cases recorded twice.
func Agreement(first, again []Result) (same, of int, differ []string) {
	byName := map[string]Result{}
	for _, r := range first {
		byName[r.Case.Name] = r
	}
	for _, a := range again {
		f, ok := byName[a.Case.Name]
		if a.Err != nil || !ok || f.Err != nil {
			continue
		}
		of++
		if slices.Equal(a.Answer, f.Answer) {
			same++
		} else {
			differ = append(differ, fmt.Sprintf("%s: %v, then %v", a.Case.Name, f.Answer, a.Answer))
		}
	}
	return same, of, differ
}
