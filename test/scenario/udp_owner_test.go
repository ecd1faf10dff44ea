package scenario_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/netlab"
)

// A connected UDP socket made after sendtrace started, sending to a port
// nobody listens on: the ICMP port unreachable that answers the first
// datagram is reported in softirq, before the socket ever failed a send.
// UDP has no connect-time state change, so its owner must be known from
// connect() itself, or --pid drops that error report and the diagnosis
// blames nobody.
func TestUDPRefusedOwner(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			ctx := scenarioContext(t)
			lab := netlab.NewPair(t, netlab.LinkOpts{})
			dst := lab.ServerAddr(v6, port)
			cl := startClient(t, ctx, lab.Client, "-proto", "udp", "-to", dst.String(),
				"-count", "2", "-await-error-before", "2")
			tr := StartTracer(t, ctx, pidArg(cl))
			release(t, cl, "start")
			r := finish(t, ctx, cl)
			stdout, stderr := tr.Sendtrace.Stop(t, tracerStop)
			t.Logf("sendtrace stderr:\n%s", stderr)
			evs, others, bad := ParseEvents(stdout)
			for _, b := range bad {
				t.Errorf("schema: %s", b)
			}
			defer func() {
				if t.Failed() {
					t.Logf("sendtrace stdout:\n%s", stdout)
				}
			}()
			if got := errnoNamesOf(r.Sockets[0].Failed()); fmt.Sprint(got) != "[ECONNREFUSED]" {
				t.Fatalf("lab: the actor saw %v, want [ECONNREFUSED]", got)
			}
			checkOnly(t, evs, r)
			sends := checkSendErrors(t, evs, r, joinedLayer())
			cookie := r.Sockets[0].Cookie
			reports := OfKind(evs, "error_report", cookie)
			if stackOnly() {
				// The documented blind spot of --no-syscall-layer: the
				// owner comes from connect()'s exit, which it does not
				// hook, so --pid may drop the report.
				t.Logf("--no-syscall-layer: %d error reports kept", len(reports))
				return
			}
			if len(reports) != 1 {
				t.Fatalf("%d error_report events on cookie %d, want 1 (the ICMP port unreachable)", len(reports), cookie)
			}
			rep := reports[0]
			checkOwner(t, rep, r)
			if rep.ErrnoName != "ECONNREFUSED" {
				t.Errorf("%s: want ECONNREFUSED", rep)
			}
			if len(sends) == 1 && rep.Mono > sends[0].Mono {
				t.Errorf("the error report (mono %d) follows the failed send it caused (mono %d)", rep.Mono, sends[0].Mono)
			}
			proc := fmt.Sprintf("%s/%d", r.Comm, r.PID)
			var diag []string
			for _, o := range others {
				var d struct {
					Kind, Rule, Comm string
					PID              uint32
					Cookie           uint64
					OwnerKnown       bool `json:"owner_known"`
					Evidence         struct{ Text string }
				}
				if json.Unmarshal([]byte(o), &d) != nil || d.Kind != "diagnosis" || d.Cookie != cookie {
					continue
				}
				diag = append(diag, o)
				if d.PID != uint32(r.PID) || d.Comm != r.Comm || !d.OwnerKnown {
					t.Errorf("diagnosis names pid %d comm %q (owner known %v), want %s: %s", d.PID, d.Comm, d.OwnerKnown, proc, o)
				}
				if strings.Contains(d.Evidence.Text, "pid 0") {
					t.Errorf("diagnosis evidence blames pid 0: %s", o)
				}
			}
			if len(diag) == 0 {
				t.Errorf("no diagnosis for cookie %d", cookie)
			}
		})
	}
}
