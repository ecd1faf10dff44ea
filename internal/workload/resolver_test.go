package workload

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestResolverForgetsGoneCgroups: a unit's name outlives its cgroup for
// keepGone (late events still get it), and is forgotten after that.
func TestResolverForgetsGoneCgroups(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "system.slice", "gone.service")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver(Config{CgroupRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	r.Prime()
	if w := r.Cgroup(st.Ino, 0); w == nil || w.String() != "systemd/gone.service" {
		t.Fatalf("before: %v", w)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.prune(time.Now().Add(keepGone / 2))
	r.mu.Unlock()
	if w := r.Cgroup(st.Ino, 0); w == nil {
		t.Fatal("forgotten before keepGone")
	}
	r.mu.Lock()
	r.prune(time.Now().Add(2 * keepGone))
	n, m := len(r.paths), len(r.byPath)
	_, kept := r.paths[st.Ino]
	r.mu.Unlock()
	if kept {
		t.Errorf("still named %s after the cgroup was gone for twice keepGone (%d paths, %d names cached)", keepGone, n, m)
	}
}
