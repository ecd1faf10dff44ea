package fleet_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unitPath is the shipped systemd unit.
const unitPath = "../../deploy/systemd/sendtrace.service"

// verifyUnit runs systemd-analyze verify on the unit text, with ExecStart
// pointed at the built binary (verify wants it to exist).
func verifyUnit(t *testing.T, text string) (string, error) {
	t.Helper()
	text = strings.ReplaceAll(text, "/usr/local/bin/sendtrace", sendtraceBin)
	p := filepath.Join(t.TempDir(), "sendtrace.service")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestSystemdUnit checks the shipped unit with systemd-analyze verify,
// that verify does reject a broken copy, and that the unit grants
// exactly the capabilities sendtrace documents, to a dynamic user.
func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is needed: apt-get install systemd (scripts/deps.sh)")
	}
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	if out, err := verifyUnit(t, unit); err != nil || out != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
	broken := strings.Replace(unit, "Type=simple", "Type=simplest", 1)
	if out, err := verifyUnit(t, broken); err == nil && out == "" {
		t.Errorf("systemd-analyze verify accepted Type=simplest: the check proves nothing")
	} else {
		t.Logf("a broken copy is rejected: %s", out)
	}
	want := map[string]string{
		"DynamicUser":           "yes",
		"AmbientCapabilities":   "CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH",
		"CapabilityBoundingSet": "CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ProtectControlGroups":  "yes",
	}
	got := map[string]string{}
	for _, line := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			got[k] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["User"]; ok {
		t.Errorf("the unit names a User; it runs as a DynamicUser")
	}
}
