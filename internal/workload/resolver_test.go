package workload

import (
	"fmt"
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

// TestResolverWatchNamesRemovedCgroups: a unit's cgroup made after the
// resolver started and removed before its first event is read is still
// named by its unit, through the path seen when it was made.
func TestResolverWatchNamesRemovedCgroups(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "system.slice"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver(Config{CgroupRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Watch(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Prime()
	// A slice and a unit in it, made at once: the unit's directory may be
	// made before the slice's is watched.
	ids := map[string]uint64{}
	for i := range 50 {
		dir := filepath.Join(root, "system.slice", fmt.Sprintf("run-%d.slice", i), fmt.Sprintf("run-u%d.service", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		ids[fmt.Sprintf("systemd/run-u%d.service", i)] = st.Ino
	}
	// The watcher maps them while they exist, with no event asking.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		n := 0
		for _, id := range ids {
			if _, ok := r.paths[id]; ok {
				n++
			}
		}
		r.mu.Unlock()
		if n == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d cgroups made mapped in 10 s", n, len(ids))
		}
	}
	for i := range 50 {
		if err := os.RemoveAll(filepath.Join(root, "system.slice", fmt.Sprintf("run-%d.slice", i))); err != nil {
			t.Fatal(err)
		}
	}
	// No walk can find them now.
	r.mu.Lock()
	r.lastWalk = time.Now().Add(time.Hour)
	r.mu.Unlock()
	for want, id := range ids {
		if w := r.Cgroup(id, 0); w.String() != want {
			t.Errorf("cgroup %d, removed before its event: %q, want %q", id, w.String(), want)
		}
	}
}
