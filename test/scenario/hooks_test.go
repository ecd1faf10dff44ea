package scenario_test

import (
	"os/exec"
	"strings"
	"testing"
)

// hooksExpect is the file of the hooks each kernel's layers must get.
const hooksExpect = "../hooks.expect"

// TestHostHooksAsExpected holds this machine's kernel to its line of
// test/hooks.expect: a kernel update whose verifier refuses one of the
// programs fails here, with the kernel's release and the verifier's words,
// instead of degrading a layer quietly.
func TestHostHooksAsExpected(t *testing.T) {
	out, err := exec.Command(sendtraceBin, "check", "--expect-file", hooksExpect).CombinedOutput()
	if err != nil {
		t.Fatalf("sendtrace check --expect-file %s: %v\n%s", hooksExpect, err, out)
	}
}

// A layer switched off fails the same check, naming the layer and why:
// the guard above can fail.
func TestHostHooksDegradedFails(t *testing.T) {
	out, err := exec.Command(sendtraceBin, "check", "--expect-file", hooksExpect, "--disable-hook", "iter/task_file").CombinedOutput()
	if err == nil {
		t.Fatalf("check passed with the owner-seed layer switched off:\n%s", out)
	}
	for _, want := range []string{"layer owner-seed uses \"degraded\"", "iter/task_file: disabled by --disable-hook"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check's failure lacks %q:\n%s", want, out)
		}
	}
}
