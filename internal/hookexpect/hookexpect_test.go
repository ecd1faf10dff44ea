package hookexpect

import (
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/session"
)

const sample = `
# comment
[6.12] send-return=tp_btf/sock_send_length
[arm64-6.1] send-return=kretprobe drop=degraded
`

func plan(seedActive bool) session.Plan {
	seed := session.Hook{Layer: session.LayerOwnerSeed, Hook: "iter/task_file", Active: true}
	if !seedActive {
		seed = session.Hook{Layer: session.LayerOwnerSeed, Why: "lost", Tried: []string{"iter/task_file: load seed_owners: permission denied: R2 type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_"}}
	}
	return session.Plan{
		{Layer: "send-return", Hook: "tp_btf/sock_send_length", Active: true},
		{Layer: "drop", Why: "no reasons"},
		seed,
	}
}

func TestLabel(t *testing.T) {
	for _, c := range []struct{ release, arch, want string }{
		{"6.18.44-fc-v1272", "amd64", "6.18"},
		{"6.1.0-56-cloud-amd64", "amd64", "6.1"},
		{"6.12.117+deb12-cloud-arm64", "arm64", "arm64-6.12"},
		{"7.3.0-rc4-cloud-amd64", "amd64", "7.3"},
		{"5.10.0-35-cloud-amd64", "amd64", "5.10"},
	} {
		if got := Label(c.release, c.arch); got != c.want {
			t.Errorf("Label(%q, %q) = %q, want %q", c.release, c.arch, got, c.want)
		}
	}
}

// A degraded layer the file does not allow fails, and the message names
// the kernel and the verifier's words; one it allows passes.
func TestCheck(t *testing.T) {
	f, err := Parse(strings.NewReader(sample), "hooks.expect")
	if err != nil {
		t.Fatal(err)
	}
	bad := f.Check(plan(false), "6.12.117+deb12-cloud-amd64", "6.12")
	if len(bad) != 2 {
		t.Fatalf("want 2 failures (drop and owner-seed degraded), got %q", bad)
	}
	joined := strings.Join(bad, "\n")
	for _, want := range []string{"kernel 6.12.117+deb12-cloud-amd64 (6.12): layer owner-seed is degraded", "R2 type=untrusted_ptr_", "layer drop is degraded"} {
		if !strings.Contains(joined, want) {
			t.Errorf("failures lack %q:\n%s", want, joined)
		}
	}
	if bad := f.Check(plan(true), "6.1.0-56-cloud-arm64", "arm64-6.1"); len(bad) != 1 || !strings.Contains(bad[0], `uses "tp_btf/sock_send_length", hooks.expect expects "kretprobe"`) {
		t.Errorf("arm64-6.1: want one hook mismatch, got %q", bad)
	}
	bad = f.Check(plan(true), "7.2.0-1-cloud-amd64", "7.2")
	if len(bad) != 1 || !strings.Contains(bad[0], "does not list this kernel") {
		t.Errorf("an unlisted kernel must hold every layer: got %q", bad)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"6.12 send-return=x", "[6.12] send-return", "[6.12] a=b\n[6.12] c=d"} {
		if _, err := Parse(strings.NewReader(in), "f"); err == nil {
			t.Errorf("Parse(%q) accepted it", in)
		}
	}
}
