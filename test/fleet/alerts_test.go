package fleet_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestServeAlertFirstFailure: a real Prometheus scrapes a real `sendtrace
// serve` and evaluates the shipped alert rules (deploy/prometheus) every
// second. One process of a workload never seen before fails one send:
// SendtraceSendFailures fires for it, while the obvious rule,
// increase(sendtrace_send_failures_total[5m]) > 0, loaded beside it, never
// does, since the series appears at 1, never at 0.
func TestServeAlertFirstFailure(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	unit := "sendtrace-alert-" + randomHex(t, 8) + ".service"
	unitDir, _ := makeCgroup(t, "system.slice/"+unit)
	label := "systemd/" + unit

	var rules []string
	for _, f := range []string{"sendtrace-alerts.yml", "sendtrace-recording.yml"} {
		p, err := filepath.Abs(filepath.Join("..", "..", "deploy", "prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, p)
	}
	naive := filepath.Join(t.TempDir(), "naive.yml")
	if err := os.WriteFile(naive, []byte(`groups:
  - name: naive
    rules:
      - alert: NaiveSendFailures
        expr: increase(sendtrace_send_failures_total[5m]) > 0
`), 0o644); err != nil {
		t.Fatal(err)
	}
	rules = append(rules, naive)

	srv := startServe(t, ctx, "--events=false", "--dst="+lab.Link.V4Net.String())
	prom := startPrometheusJob(t, ctx, srv.addr, "", rules...)
	prom.waitQuery(t, ctx, `sendtrace_build_info`, 1)

	a := lab.client(t, ctx, 1)
	moveInto(t, unitDir, a.PID())
	if err := a.Release("start"); err != nil {
		t.Fatal(err)
	}
	if n := len(failedSends(t, ctx, a)); n != 1 {
		t.Fatalf("lab: the actor saw %d failed sends, want 1", n)
	}
	series := fmt.Sprintf(`sendtrace_send_failures_total{workload=%q}`, label)
	prom.waitQuery(t, ctx, series, 1)
	firing := fmt.Sprintf(`count(ALERTS{alertname="SendtraceSendFailures",alertstate="firing",workload=%q})`, label)
	prom.waitQuery(t, ctx, firing, 1)
	prom.waitQuery(t, ctx, fmt.Sprintf(`sendtrace:send_failures:increase5m{workload=%q}`, label), 1)

	// The obvious rule has had the series for as long, and more: it stays
	// silent, increase() being 0.
	time.Sleep(5 * time.Second)
	if v, ok, err := prom.query(ctx, fmt.Sprintf(`count(ALERTS{alertname="NaiveSendFailures",workload=%q})`, label)); err != nil || ok {
		t.Errorf("the obvious rule fired (%v %v %v): the first failure was visible to increase() after all", v, ok, err)
	}
	inc, ok, err := prom.query(ctx, fmt.Sprintf(`increase(%s[5m])`, series))
	t.Logf("prometheus: increase(%s[5m]) = %v (present %v, %v)", series, inc, ok, err)
	if v, ok, err := prom.query(ctx, firing); err != nil || !ok || v != 1 {
		t.Errorf("SendtraceSendFailures does not fire: %v %v %v", v, ok, err)
	} else {
		t.Logf("SendtraceSendFailures fires while NaiveSendFailures stays silent")
	}
	_, stderr := srv.Stop(t, tracerStop)
	t.Logf("sendtrace serve stderr:\n%s", stderr)
}
