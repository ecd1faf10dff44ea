package workload

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The containers of testdata/hostroot, a host's /run as each runtime
// leaves it: containerd's CRI plugin with runc, CRI-O with runc and with
// crun, Docker, and k3s. Each runtime's state names the bundle by its
// path on the host (/run/...), so under --host-root it is found only
// below the root.
var hostRootContainers = []struct {
	runtime, cgroup, want string
}{
	{"containerd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7f1e2d3c.slice/cri-containerd-" + strings.Repeat("1c0d", 16) + ".scope", "k8s/shop/cart-7d9/cart"},
	{"CRI-O, runc", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7f1e2d3c.slice/crio-" + strings.Repeat("2c7a", 16) + ".scope", "k8s/shop/checkout-5f6/checkout"},
	{"CRI-O, crun", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod7f1e2d3c.slice/crio-" + strings.Repeat("3c7b", 16) + ".scope", "k8s/shop/search-9c1/search"},
	{"Docker", "/system.slice/docker-" + strings.Repeat("4d0c", 16) + ".scope", "docker/4d0c4d0c4d0c"},
	{"k3s", "/kubepods/besteffort/pod7f1e2d3c-0000-4a6b-9c2d-aabbccddeeff/" + strings.Repeat("5e3a", 16), "k8s/data/ingest-2b4/ingest"},
}

func hostRootResolver(t *testing.T) (*Resolver, string) {
	t.Helper()
	host, err := filepath.Abs("testdata/hostroot")
	if err != nil {
		t.Fatal(err)
	}
	cgroups := t.TempDir()
	r, err := NewResolver(Config{CgroupRoot: cgroups, RunDir: filepath.Join(host, "run"), HostRoot: host})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hostRootContainers {
		if err := os.MkdirAll(filepath.Join(cgroups, c.cgroup), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return r, cgroups
}

// TestRuntimesUnderHostRoot names each runtime's container as the
// DaemonSet sees the host: its /run under --host-root.
func TestRuntimesUnderHostRoot(t *testing.T) {
	r, cgroups := hostRootResolver(t)
	var warned []string
	r.cfg.Warn = func(s string) { warned = append(warned, s) }
	r.Prime()
	for _, c := range hostRootContainers {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(cgroups, c.cgroup), &st); err != nil {
			t.Fatal(err)
		}
		if got := r.Cgroup(st.Ino, 0).String(); got != c.want {
			t.Errorf("%s: %q, want %q", c.runtime, got, c.want)
		}
	}
	if len(warned) != 0 {
		t.Errorf("warnings: %q", warned)
	}
}

// TestBundleMissingUnderHostRoot: a runtime's state whose bundle is not
// under --host-root (its directory not mounted) gives the container id,
// and one warning that says what to mount.
func TestBundleMissingUnderHostRoot(t *testing.T) {
	host := t.TempDir()
	id := strings.Repeat("2c7a", 16)
	state := filepath.Join("run", "runc", id, "state.json")
	b, err := os.ReadFile(filepath.Join("testdata", "hostroot", state))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(host, state)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, state), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cgroups := t.TempDir()
	cg := hostRootContainers[1].cgroup
	if err := os.MkdirAll(filepath.Join(cgroups, cg), 0o755); err != nil {
		t.Fatal(err)
	}
	var warned []string
	r, err := NewResolver(Config{CgroupRoot: cgroups, RunDir: filepath.Join(host, "run"), HostRoot: host,
		Warn: func(s string) { warned = append(warned, s) }})
	if err != nil {
		t.Fatal(err)
	}
	r.Prime()
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(cgroups, cg), &st); err != nil {
		t.Fatal(err)
	}
	if got := r.Cgroup(st.Ino, 0).String(); got != "crio/2c7a2c7a2c7a" {
		t.Errorf("%q, want crio/2c7a2c7a2c7a", got)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "/run/containers/storage/overlay-containers/"+id+"/userdata") || !strings.Contains(warned[0], "--host-root "+host) {
		t.Errorf("warnings: %q; want one naming the bundle and --host-root", warned)
	}
}

// TestPrivateCgroupNamespace: read from a container with a cgroup
// namespace of its own, /proc/PID/cgroup of a process in another pod
// says /../../..., relative to that namespace's root; the process is
// still named by its container, through the cgroup whose path ends so.
func TestPrivateCgroupNamespace(t *testing.T) {
	r, _ := hostRootResolver(t)
	r.procRoot = t.TempDir()
	for pid, c := range map[string]string{
		"4242": "0::/../../kubepods-burstable.slice/kubepods-burstable-pod7f1e2d3c.slice/cri-containerd-" + strings.Repeat("1c0d", 16) + ".scope\n",
		"8282": "0::/../../../besteffort/pod7f1e2d3c-0000-4a6b-9c2d-aabbccddeeff/" + strings.Repeat("5e3a", 16) + "\n",
	} {
		if err := os.MkdirAll(filepath.Join(r.procRoot, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r.procRoot, pid, "cgroup"), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r.procRoot, pid, "comm"), []byte("app\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.Prime()
	for pid, want := range map[uint32]string{4242: "k8s/shop/cart-7d9/cart", 8282: "k8s/data/ingest-2b4/ingest"} {
		if w, ok := r.PID(pid); !ok || w.String() != want {
			t.Errorf("pid %d: %v %v, want %s", pid, w, ok, want)
		}
	}
}
