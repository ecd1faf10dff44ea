package workload

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestMkdirTrace: the cgroup_mkdir tracepoint gives a cgroup's id and
// path although the cgroup is removed before its rings are read.
func TestMkdirTrace(t *testing.T) {
	testutil.RequireRoot(t)
	root, err := CgroupV2Mount()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := openMkdirTrace("")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	name := "sendtrace-mkdirtrace-" + strings.ReplaceAll(t.Name(), "/", "-")
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	err = syscall.Stat(dir, &st)
	if rmErr := os.Remove(dir); err != nil || rmErr != nil {
		t.Fatal(err, rmErr)
	}
	tr.mu.Lock()
	all := tr.drain(nil)
	tr.mu.Unlock()
	for _, c := range all {
		if c.id == st.Ino {
			if c.path != "/"+name {
				t.Errorf("cgroup %d: path %q, want /%s", c.id, c.path, name)
			}
			return
		}
	}
	t.Errorf("cgroup %d (/%s) not among the %d made: %v", st.Ino, name, len(all), all)
}
