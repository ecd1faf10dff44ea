package render

import (
	"io"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/session"
)

// maxDiagnosesKept bounds the diagnoses kept for the exit summary: a
// storm of failures over days must not grow memory without limit.
const maxDiagnosesKept = 1 << 16

// SummarySink writes the end-of-run summary, then the failures grouped
// by diagnosis, when the session ends. Live mode, record and report all
// end with it.
type SummarySink struct {
	*Summary
	out       io.Writer
	diagnosed []diagnose.Diagnosis
}

// NewSummarySink returns a summary that is written to out at the end.
func NewSummarySink(out io.Writer) *SummarySink {
	return &SummarySink{Summary: NewSummary(), out: out}
}

// Begin does nothing: the summary is written at the end.
func (s *SummarySink) Begin(*session.Description) error { return nil }

// Event counts one event.
func (s *SummarySink) Event(e *events.Event) error {
	s.Observe(e)
	return nil
}

var _ pipeline.DiagnosisSink = (*SummarySink)(nil)

// Diagnosis keeps d for the failures-by-diagnosis table.
func (s *SummarySink) Diagnosis(d *diagnose.Diagnosis) error {
	if len(s.diagnosed) < maxDiagnosesKept {
		s.diagnosed = append(s.diagnosed, *d)
	}
	return nil
}

// Diagnosed returns the diagnoses kept so far.
func (s *SummarySink) Diagnosed() []diagnose.Diagnosis { return s.diagnosed }

// End writes the summary with the kernel's totals.
func (s *SummarySink) End(end *session.End) error {
	if err := s.Render(s.out, end.Totals); err != nil {
		return err
	}
	return diagnose.RenderSummary(s.out, s.diagnosed)
}
