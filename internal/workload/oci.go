package workload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sendtrace/sendtrace/internal/events"
)

// runcRoots are the state directories runc keeps per container (runc's
// own default, which CRI-O uses; containerd's shims, k3s's among them;
// Docker's), relative to the host's /run. Each holds <id>/state.json,
// which names the bundle.
var runcRoots = []string{
	"runc",
	"containerd/runc/k8s.io",
	"containerd/runc/moby",
	"containerd/runc/default",
	"docker/runtime-runc/moby",
}

// crunRoots are crun's state directories (CRI-O's and Podman's crun).
// Each holds <id>/status, which names the bundle, and most often
// <id>/config.json, crun's copy of the bundle's.
var crunRoots = []string{"crun"}

// taskBundles are containerd's bundle directories (<id>/config.json),
// k3s's containerd's among them.
var taskBundles = []string{
	"containerd/io.containerd.runtime.v2.task/k8s.io",
	"containerd/io.containerd.runtime.v2.task/moby",
	"containerd/io.containerd.runtime.v2.task/default",
	"k3s/containerd/io.containerd.runtime.v2.task/k8s.io",
}

// errNoBundle: a runtime's state names a bundle that is not there, as
// when --host-root lacks the mount that holds it.
var errNoBundle = errors.New("no bundle")

// The annotations containerd's CRI plugin and CRI-O put in a Kubernetes
// container's OCI bundle.
var (
	podNameKeys       = []string{"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"}
	podNamespaceKeys  = []string{"io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"}
	containerNameKeys = []string{"io.kubernetes.cri.container-name", "io.kubernetes.container.name"}
)

// annotations finds the container's OCI annotations on the host, whose
// /run is runDir and whose / is hostRoot ("" or "/" on the host itself):
// a runtime's state names its bundle by its path on the host. It returns
// nil when no runtime keeps state for id, an error wrapping
// fs.ErrPermission when a state directory exists but cannot be read, and
// one wrapping errNoBundle when the state names a bundle not found.
func annotations(runDir, hostRoot, id string) (map[string]string, error) {
	var denied error
	// bundle reads config.json of a bundle named by its host path.
	bundle := func(state, dir string) (map[string]string, bool) {
		var err error
		for _, d := range onHost(hostRoot, dir) {
			var a map[string]string
			if a, err = bundleAnnotations(filepath.Join(d, "config.json")); err == nil {
				return a, true
			}
			if errors.Is(err, fs.ErrPermission) {
				denied = err
				return nil, false
			}
		}
		if denied == nil {
			denied = fmt.Errorf("%s names bundle %s: %w there (%v)", state, dir, errNoBundle, err)
		}
		return nil, false
	}
	for _, root := range crunRoots {
		dir := filepath.Join(runDir, root, id)
		a, err := bundleAnnotations(filepath.Join(dir, "config.json"))
		if err == nil {
			return a, nil
		}
		if errors.Is(err, fs.ErrPermission) {
			denied = err
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				denied = err
			}
			continue
		}
		var st struct {
			Bundle string `json:"bundle"`
		}
		if json.Unmarshal(b, &st) != nil || st.Bundle == "" {
			continue
		}
		if a, ok := bundle(filepath.Join(dir, "status"), st.Bundle); ok {
			return a, nil
		}
	}
	for _, root := range runcRoots {
		b, err := os.ReadFile(filepath.Join(runDir, root, id, "state.json"))
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				denied = err
			}
			continue
		}
		var st struct {
			Config struct {
				Labels []string `json:"labels"`
			} `json:"config"`
		}
		if json.Unmarshal(b, &st) != nil {
			continue
		}
		for _, l := range st.Config.Labels {
			if dir, ok := strings.CutPrefix(l, "bundle="); ok {
				if a, ok := bundle(filepath.Join(runDir, root, id, "state.json"), dir); ok {
					return a, nil
				}
			}
		}
	}
	for _, dir := range taskBundles {
		a, err := bundleAnnotations(filepath.Join(runDir, dir, id, "config.json"))
		if err == nil {
			return a, nil
		}
		if errors.Is(err, fs.ErrPermission) {
			denied = err
		}
	}
	return nil, denied
}

// onHost is where a path on the host is seen: under hostRoot first, then
// as it is (a bundle outside the mounts of --host-root, which the process
// may still see, as a test's does).
func onHost(hostRoot, p string) []string {
	if hostRoot == "" || hostRoot == "/" {
		return []string{p}
	}
	return []string{filepath.Join(hostRoot, p), p}
}

func bundleAnnotations(configPath string) (map[string]string, error) {
	b, err := os.ReadFile(configPath)
	if err != nil {
		return nil, err
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, err
	}
	return spec.Annotations, nil
}

// withPod names a container's pod from its annotations, when it has them.
func withPod(w *events.Workload, a map[string]string) *events.Workload {
	pod, ns := first(a, podNameKeys), first(a, podNamespaceKeys)
	if pod == "" || ns == "" {
		return w
	}
	return (&events.Workload{
		Kind: events.WorkloadKubernetes, Name: pod, ID: w.ID,
		Pod: pod, Namespace: ns, Container: first(a, containerNameKeys),
	}).Finish()
}

func first(a map[string]string, keys []string) string {
	for _, k := range keys {
		if v := a[k]; v != "" {
			return v
		}
	}
	return ""
}
