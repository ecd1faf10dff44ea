package hookexpect

import (
	"bytes"
	"strings"
	"testing"
)

// The kernels page orders kernels by architecture and version, shows each
// layer's hook or its state, and says why a layer degraded with the
// kernel's answers.
func TestWriteKernelsDoc(t *testing.T) {
	results := map[string]*CheckResult{
		"6.12":      {Kernel: "6.12.117+deb12-cloud-amd64", Hooks: plan(true)},
		"5.10":      {Kernel: "5.10.0-35-cloud-amd64", Hooks: plan(false)},
		"arm64-6.1": {Kernel: "6.1.0-56-cloud-arm64", Hooks: plan(true)},
	}
	var b bytes.Buffer
	if err := WriteKernelsDoc(&b, results, "a test"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	i510, i612, iarm := strings.Index(out, "| 5.10 |"), strings.Index(out, "| 6.12 |"), strings.Index(out, "| arm64-6.1 |")
	if i510 < 0 || i612 < i510 || iarm < i612 {
		t.Errorf("kernels out of order (5.10 at %d, 6.12 at %d, arm64-6.1 at %d):\n%s", i510, i612, iarm, out)
	}
	for _, want := range []string{"| `iter/task_file` |", "**degraded**", "## 5.10 (5.10.0-35-cloud-amd64)", "- **owner-seed**: degraded: lost", "R2 type=untrusted_ptr_"} {
		if !strings.Contains(out, want) {
			t.Errorf("the page lacks %q:\n%s", want, out)
		}
	}
}
