package corpus

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/report"
)

// Recording is where a case's recording is kept in dir.
func Recording(dir, name string) string { return filepath.Join(dir, name+".jsonl.zst") }

// LabelPath is where a case's label is kept in dir.
func LabelPath(dir, name string) string { return filepath.Join(dir, name+".json") }

// Label is what is committed beside a recording: the case as the lab
// built it, and the answer the diagnosis gave when it was recorded.
type Label struct {
	Case
	Kernel string   `json:"kernel"`
	Answer []string `json:"answer"`
}

// ReadLabel reads a case's label from dir.
func ReadLabel(dir, name string) (*Label, error) {
	b, err := os.ReadFile(LabelPath(dir, name))
	if err != nil {
		return nil, err
	}
	var l Label
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", LabelPath(dir, name), err)
	}
	return &l, nil
}

// WriteLabel writes a case's label to dir.
func WriteLabel(dir string, l *Label) error {
	js, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(LabelPath(dir, l.Name), append(js, '\n'), 0o644)
}

// Diagnose replays a recording as `sendtrace report` does and returns
// its diagnoses.
func Diagnose(path string) ([]diagnose.Diagnosis, error) {
	rec, err := report.Load(path, report.Options{})
	if err != nil {
		return nil, err
	}
	return rec.Diagnoses, nil
}

// Answer is a recording's diagnoses as "rule/confidence xN", sorted (a
// retry storm with its connections and failures): what the replay test
// pins and what two recordings of one fault must share.
func Answer(ds []diagnose.Diagnosis) []string {
	n := map[string]int{}
	for _, d := range ds {
		k := d.Rule + "/" + d.Confidence
		if d.Rule == diagnose.RuleRetryStorm {
			// A storm's size is the lab's: every connection it opened.
			k += fmt.Sprintf(" (%d connections, %d failed)", d.Evidence.Connections, d.Evidence.Failures)
		}
		n[k]++
	}
	out := []string{}
	for k, v := range n {
		out = append(out, fmt.Sprintf("%s x%d", k, v))
	}
	slices.Sort(out)
	return out
}

// Verdict classes.
const (
	Right   = "correct"
	Wrong   = "wrong"
	Unknown = "unknown" // not wrong, not correct: no diagnosis, or only low confidence ones
)

// Verdict is how a case's diagnoses score against its cause.
type Verdict struct {
	Class      string // Right, Wrong or Unknown
	Rule       string // the diagnosis that decided it (None when there was none)
	Confidence string // its confidence; "" for None
}

var confRank = map[string]int{diagnose.Low: 1, diagnose.Medium: 2, diagnose.High: 3}

// Score judges a case's diagnoses. Any diagnosis above low confidence
// that does not name the cause makes the answer wrong (the most confident
// one is shown); otherwise it is correct when the cause's own diagnosis
// is there above low confidence (or, for a cause that is no failure,
// when there is no diagnosis at all); anything else is unknown.
func Score(c Case, ds []diagnose.Diagnosis) Verdict {
	ok := c.Correct()
	var wrong, right, low *diagnose.Diagnosis
	for i := range ds {
		d := &ds[i]
		switch {
		case d.Confidence == diagnose.Low:
			if low == nil {
				low = d
			}
		case !slices.Contains(ok, d.Rule):
			if wrong == nil || confRank[d.Confidence] > confRank[wrong.Confidence] {
				wrong = d
			}
		case d.Rule == ok[0]:
			if right == nil || confRank[d.Confidence] > confRank[right.Confidence] {
				right = d
			}
		}
	}
	switch {
	case wrong != nil:
		return Verdict{Wrong, wrong.Rule, wrong.Confidence}
	case right != nil:
		return Verdict{Right, right.Rule, right.Confidence}
	case len(ds) == 0 && ok[0] == None:
		return Verdict{Right, None, ""}
	case low != nil:
		return Verdict{Unknown, low.Rule, low.Confidence}
	case len(ds) > 0:
		return Verdict{Unknown, ds[0].Rule, ds[0].Confidence}
	}
	return Verdict{Unknown, None, ""}
}

// Result is one case's recording, replayed and scored.
type Result struct {
	Case    Case
	Answer  []string
	Verdict Verdict
	Texts   []string // each diagnosis as the text report gives it
	Err     error    // the recording could not be replayed (or is missing)
}

// Evaluate replays every case's recording in dir.
func Evaluate(dir string) []Result {
	var out []Result
	for _, c := range Cases() {
		r := Result{Case: c}
		ds, err := Diagnose(Recording(dir, c.Name))
		if err != nil {
			r.Err = err
		} else {
			r.Answer, r.Verdict = Answer(ds), Score(c, ds)
			for _, d := range ds {
				r.Texts = append(r.Texts, d.String())
			}
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Result) int {
		return cmp.Compare(slices.Index(Causes, a.Case.Cause), slices.Index(Causes, b.Case.Cause))
	})
	return out
}
