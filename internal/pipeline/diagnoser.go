package pipeline

import (
	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Diagnoser concludes diagnoses from a session's events: the diagnosis
// engine (diagnose.Engine), built by the caller with the thresholds it
// wants, so that a live session, a replay and a test of the rules run
// the same engine. NoDiagnosis stands for none.
type Diagnoser interface {
	// Observe takes one event, in the order of the stream, and returns
	// the diagnoses it concludes (most often none).
	Observe(*events.Event) []diagnose.Diagnosis
	// Finish returns what the end of the stream leaves open.
	Finish() []diagnose.Diagnosis
}

// NoDiagnosis is the diagnoser of a pipeline whose sinks want no
// diagnoses: nothing is concluded, and no engine state is kept.
var NoDiagnosis Diagnoser

// SysctlsReader is a diagnoser that judges by the sysctls of a socket's
// network namespace (the setting that timed a connection out); the
// pipeline hands it its own reader of them, which knows the recording's
// header and footer and asks the live sinks (SysctlsSource).
type SysctlsReader interface {
	ReadSysctls(func(netns uint32) map[string]string)
}

// SysctlsSource is a sink that learns the sysctls of network namespaces
// while a live session runs (the recorder's reader of each namespace's
// sysctls); the diagnosis asks it for the values of a socket's
// namespace when one of its connections times out.
type SysctlsSource interface {
	NetnsSysctls(netns uint32) map[string]string
}

// Namespaces hands the diagnosis the sysctls of network namespaces known
// before the events (a recording's footer holds them, read when each
// namespace's first event was seen).
func (p *Pipeline) Namespaces(ns []session.NetnsSysctls) {
	for _, n := range ns {
		p.know(n.Netns.Inode, n.Sysctls)
	}
}

func (p *Pipeline) know(inode uint64, vals map[string]string) {
	if inode != 0 && len(vals) > 0 {
		p.sysctls[uint32(inode)] = vals
	}
}

// netnsSysctls is the diagnosis's view of a namespace's sysctls: known
// ones first, then what a live sink has read.
func (p *Pipeline) netnsSysctls(netns uint32) map[string]string {
	if v, ok := p.sysctls[netns]; ok {
		return v
	}
	for _, s := range p.sinks {
		if src, ok := s.(SysctlsSource); ok {
			if v := src.NetnsSysctls(netns); len(v) > 0 {
				return v
			}
		}
	}
	return nil
}
