package pipeline

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
)

// recordingSink notes the order in which it is called.
type recordingSink struct {
	calls []string
	fail  string
}

func (r *recordingSink) note(s string) error {
	r.calls = append(r.calls, s)
	if s == r.fail {
		return errors.New("sink failed at " + s)
	}
	return nil
}
func (r *recordingSink) Begin(*session.Description) error { return r.note("begin") }
func (r *recordingSink) Event(e *events.Event) error      { return r.note(e.Kind.String()) }
func (r *recordingSink) Diagnosis(d *diagnose.Diagnosis) error {
	return r.note("diagnosis " + d.Rule)
}
func (r *recordingSink) End(*session.End) error { return r.note("end") }

// eventSink is a sink that takes no diagnoses.
type eventSink struct{ calls []string }

func (s *eventSink) Begin(*session.Description) error { return nil }
func (s *eventSink) Event(e *events.Event) error {
	s.calls = append(s.calls, e.Kind.String())
	return nil
}
func (s *eventSink) End(*session.End) error { return nil }

func engine() *diagnose.Engine { return diagnose.New(diagnose.Config{}) }

func replay(t *testing.T, p *Pipeline, evs []events.Event) {
	t.Helper()
	if err := p.Begin(&session.Description{}); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := p.Event(&e); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.End(&session.End{}); err != nil {
		t.Fatal(err)
	}
}

func resetEvents() []events.Event {
	base := events.Event{PID: 9, Comm: "app", OwnerKnown: true, Cookie: 5, Family: events.AFInet, Protocol: events.ProtoTCP,
		Src: netip.MustParseAddrPort("198.18.0.1:4000"), Dst: netip.MustParseAddrPort("198.18.0.2:80"),
		State: 1, SinceSend: 5 * time.Millisecond, SinceRecv: 5 * time.Millisecond}
	rst, rep := base, base
	rst.Kind, rst.Mono = events.KindReceiveReset, 1e9
	rep.Kind, rep.Mono, rep.Errno, rep.State = events.KindErrorReport, 1e9+1, events.ECONNRESET, 7
	return []events.Event{rst, rep}
}

// Every sink sees each event, then the diagnoses it concluded, in one
// order; End reaches every sink even after one failed.
func TestPipelineOrder(t *testing.T) {
	a, b := &recordingSink{}, &recordingSink{}
	replay(t, New(engine(), a, b), resetEvents())
	for _, s := range []*recordingSink{a, b} {
		got := s.calls
		if len(got) < 4 || got[0] != "begin" || got[1] != "receive_reset" || got[len(got)-1] != "end" {
			t.Fatalf("calls %q", got)
		}
		diag := -1
		for i, c := range got {
			if c == "diagnosis peer-reset" {
				diag = i
			}
		}
		if diag < 2 {
			t.Errorf("no peer-reset diagnosis after its event: %q", got)
		}
	}
}

func TestPipelineSinkFailure(t *testing.T) {
	bad, good := &recordingSink{fail: "receive_reset"}, &recordingSink{}
	p := New(engine(), bad, good)
	_ = p.Begin(&session.Description{})
	evs := resetEvents()
	if err := p.Event(&evs[0]); err == nil {
		t.Fatal("a failing sink's error was not returned")
	}
	if err := p.Event(&evs[1]); err == nil {
		t.Error("events were delivered after a sink failed")
	}
	if err := p.End(&session.End{}); err == nil {
		t.Error("End lost the sink's error")
	}
	if good.calls[len(good.calls)-1] != "end" || bad.calls[len(bad.calls)-1] != "end" {
		t.Errorf("End did not reach every sink: %q, %q", good.calls, bad.calls)
	}
}

// The session's totals are the kernel's plus what retiring took out of
// its map: a retired count is neither lost nor counted twice.
func TestSessionTotalsKeepRetired(t *testing.T) {
	key := func(pid uint32) events.TotalsKey {
		return events.TotalsKey{PID: pid, Kind: events.KindSendError, Errno: 90}
	}
	kernel := map[events.TotalsKey]events.TotalsValue{key(1): {Count: 3}, key(2): {Count: 5}}
	live := withSession(LiveTotals{
		Read: func() (*events.Totals, error) {
			t := &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}}
			for k, v := range kernel {
				t.ByKey[k] = v
			}
			return t, nil
		},
		Retire: func(pids []uint32) (*events.Totals, error) {
			t := &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}}
			for _, p := range pids {
				t.ByKey[key(p)] = kernel[key(p)]
				delete(kernel, key(p))
			}
			return t, nil
		},
	})
	if _, err := live.Retire([]uint32{1}); err != nil {
		t.Fatal(err)
	}
	kernel[key(1)] = events.TotalsValue{Count: 2} // the pid, reused
	got, err := live.Session()
	if err != nil {
		t.Fatal(err)
	}
	if got.ByKey[key(1)].Count != 5 || got.ByKey[key(2)].Count != 5 {
		t.Errorf("session totals %v, want pid 1: 3 retired + 2 now, pid 2: 5", got.ByKey)
	}
}

// A sink without a Diagnosis method gets every event and is not asked
// for diagnoses; a DiagnosisSink beside it gets them.
func TestPipelineSinkWithoutDiagnoses(t *testing.T) {
	plain, diag := &eventSink{}, &recordingSink{}
	replay(t, New(engine(), plain, diag), resetEvents())
	if want := []string{"receive_reset", "error_report"}; !slices.Equal(plain.calls, want) {
		t.Errorf("events %q, want %q", plain.calls, want)
	}
	if !slices.Contains(diag.calls, "diagnosis peer-reset") {
		t.Errorf("the diagnosis sink beside it got no peer-reset: %q", diag.calls)
	}
}

// NoDiagnosis concludes nothing: every sink still gets every event.
func TestPipelineNoDiagnosis(t *testing.T) {
	s := &recordingSink{}
	replay(t, New(NoDiagnosis, s), resetEvents())
	if want := []string{"begin", "receive_reset", "error_report", "end"}; !slices.Equal(s.calls, want) {
		t.Errorf("calls %q, want %q", s.calls, want)
	}
}

// sysctlsDiagnoser notes the reader of sysctls the pipeline hands it.
type sysctlsDiagnoser struct {
	*diagnose.Engine
	read func(netns uint32) map[string]string
}

func (d *sysctlsDiagnoser) ReadSysctls(f func(netns uint32) map[string]string) { d.read = f }

// liveSysctls is a sink that read a namespace's sysctls while the session
// ran.
type liveSysctls struct{ eventSink }

func (liveSysctls) NetnsSysctls(netns uint32) map[string]string {
	if netns == 3 {
		return map[string]string{"net.ipv4.tcp_retries2": "5"}
	}
	return nil
}

// The diagnoser reads a namespace's sysctls from the header, then the
// footer (Namespaces), then a live sink that read them.
func TestPipelineHandsSysctlsToDiagnoser(t *testing.T) {
	d := &sysctlsDiagnoser{Engine: engine()}
	p := New(d, &liveSysctls{})
	if d.read == nil {
		t.Fatal("the pipeline did not hand the diagnoser its reader of sysctls")
	}
	p.Namespaces([]session.NetnsSysctls{{Netns: session.Netns{Inode: 2}, Sysctls: map[string]string{"net.ipv4.tcp_retries2": "4"}}})
	if err := p.Begin(&session.Description{Netns: session.Netns{Inode: 1}, Sysctls: map[string]string{"net.ipv4.tcp_retries2": "3"}}); err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[uint32]string{1: "3", 2: "4", 3: "5", 4: ""} {
		if got := d.read(ns)["net.ipv4.tcp_retries2"]; got != want {
			t.Errorf("namespace %d: tcp_retries2 %q, want %q", ns, got, want)
		}
	}
}
