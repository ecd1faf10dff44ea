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

// TestSystemdUnitWebConfig turns on the unit's commented TLS and basic
// auth lines, as its comment says to, and checks the result with
// systemd-analyze verify: serve then reads its web configuration file
// from the credentials systemd hands the dynamic user. /recording stays
// off until its commented ExecStart= is used, which verifies too.
func TestSystemdUnitWebConfig(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is needed: apt-get install systemd (scripts/deps.sh)")
	}
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	on := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#LoadCredential=") || strings.HasPrefix(line, "#ExecStart=") {
			line = line[1:]
			on++
		}
		lines = append(lines, line)
	}
	unit := strings.Join(lines, "\n")
	if on != 5 {
		t.Fatalf("%d commented LoadCredential= and ExecStart= lines, want 5:\n%s", on, b)
	}
	if !strings.Contains(unit, "\nExecStart=/usr/local/bin/sendtrace serve --listen 0.0.0.0:9464 --events=false --flight-dir %S/sendtrace/flight --web.config.file %d/web.yml\n") {
		t.Errorf("the TLS ExecStart= does not give --flight-dir and --web.config.file %%d/web.yml:\n%s", unit)
	}
	if !strings.Contains(unit, "\nExecReload=kill -HUP $MAINPID\n") {
		t.Errorf("no ExecReload= sending SIGHUP")
	}
	if out, err := verifyUnit(t, unit); err != nil || out != "" {
		t.Errorf("systemd-analyze verify, TLS lines on: %v\n%s", err, out)
	}
	for _, line := range strings.Split(unit, "\n") {
		if strings.HasPrefix(line, "ExecStart=") && strings.Contains(line, "--serve-recordings") {
			t.Errorf("%s: /recording is served before it is asked for", line)
		}
	}
	// The /recording example: the TLS ExecStart= with --serve-recordings,
	// as the comment says to write it.
	_, example, ok := strings.Cut(unit, "\n#   ExecStart=")
	example, _, _ = strings.Cut(example, "\n")
	tlsStart := "/usr/local/bin/sendtrace serve --listen 0.0.0.0:9464 --events=false --flight-dir %S/sendtrace/flight --web.config.file %d/web.yml"
	if !ok || example != tlsStart+" --serve-recordings" {
		t.Fatalf("no commented ExecStart= serving /recording behind the web configuration (%q)", example)
	}
	recordings := strings.Replace(unit, "\nExecStart="+tlsStart+"\n", "\nExecStart="+example+"\n", 1)
	if recordings == unit {
		t.Fatalf("no ExecStart=%s to add --serve-recordings to", tlsStart)
	}
	if out, err := verifyUnit(t, recordings); err != nil || out != "" {
		t.Errorf("systemd-analyze verify, TLS lines and --serve-recordings on: %v\n%s", err, out)
	}
}
