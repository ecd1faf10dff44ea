// Package prometheus_test checks the shipped Prometheus rules with
// promtool, and that every metric they name is one serve exports.
package prometheus_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/metrics"
)

var ruleFiles = []string{"sendtrace-alerts.yml", "sendtrace-recording.yml"}

func promtool(t *testing.T, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatal("promtool is not installed: apt-get install prometheus (scripts/deps.sh)")
	}
	out, err := exec.Command("promtool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	t.Logf("promtool %v:\n%s", args, out)
}

// TestRulesCheck: promtool accepts the rules.
func TestRulesCheck(t *testing.T) {
	promtool(t, append([]string{"check", "rules"}, ruleFiles...)...)
}

// TestRulesUnit runs the rules' unit tests: the first failure of a new
// workload fires SendtraceSendFailures, where increase() alone is 0; a
// new agent's series fire; Prometheus's own restart does not; an inexact
// node fires SendtraceCountsInexact.
func TestRulesUnit(t *testing.T) {
	promtool(t, "test", "rules", "sendtrace-rules.test.yml")
}

// TestRulesNameExportedMetrics: every sendtrace_ metric the rules name is
// one serve exports.
func TestRulesNameExportedMetrics(t *testing.T) {
	exported := metrics.Names()
	for _, f := range append(ruleFiles, "sendtrace-rules.test.yml") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Whole names, so that a recorded name's middle
		// (workload_errno:sendtrace_send_failures:rate5m) is not one.
		for _, name := range regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`).FindAllString(string(b), -1) {
			if strings.HasPrefix(name, "sendtrace_") && !exported[name] {
				t.Errorf("%s names %s, which serve does not export", f, name)
			}
		}
	}
}
