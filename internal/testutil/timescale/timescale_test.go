package timescale

import (
	"testing"
	"time"
)

func TestScale(t *testing.T) {
	t.Setenv(Env, "")
	if got := Scale(3 * time.Second); got != 3*time.Second {
		t.Errorf("unset: Scale(3s) = %v, want 3s", got)
	}
	t.Setenv(Env, "10")
	if got := Scale(3 * time.Second); got != 30*time.Second {
		t.Errorf("%s=10: Scale(3s) = %v, want 30s", Env, got)
	}
	for _, bad := range []string{"0.5", "ten", "-2"} {
		t.Setenv(Env, bad)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s=%s: no panic", Env, bad)
				}
			}()
			Scale(time.Second)
		}()
	}
}
