package testutil

import (
	"fmt"
	"os/exec"
	"testing"
)

// SmallDisk mounts a tmpfs of size bytes (mode 0700) on a new temporary
// directory and returns it, unmounted when the test ends: a real file
// system that fills up, for the full-disk tests. It needs root.
func SmallDisk(t testing.TB, size int) string {
	t.Helper()
	RequireRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "sendtrace-test", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %d-byte tmpfs: %v: %s", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
