package workload

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sendtrace/sendtrace/internal/events"
)

// runcRoots are the state directories runc keeps per container (runc's
// own default, containerd's and Docker's shims, CRI-O's), relative to the
// host's /run. Each holds <id>/state.json, which names the bundle.
var runcRoots = []string{
	"runc",
	"containerd/runc/k8s.io",
	"containerd/runc/moby",
	"containerd/runc/default",
	"docker/runtime-runc/moby",
}

// taskBundles are containerd's bundle directories (<id>/config.json).
var taskBundles = []string{
	"containerd/io.containerd.runtime.v2.task/k8s.io",
	"containerd/io.containerd.runtime.v2.task/moby",
	"containerd/io.containerd.runtime.v2.task/default",
}

// The annotations containerd's CRI plugin and CRI-O put in a Kubernetes
// container's OCI bundle.
var (
	podNameKeys       = []string{"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"}
	podNamespaceKeys  = []string{"io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"}
	containerNameKeys = []string{"io.kubernetes.cri.container-name", "io.kubernetes.container.name"}
)

// annotations finds the container's OCI annotations on the host. It
// returns nil when no runtime keeps state for id, and an error wrapping
// fs.ErrPermission when a state directory exists but cannot be read.
func annotations(runDir, id string) (map[string]string, error) {
	var denied error
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
			if bundle, ok := strings.CutPrefix(l, "bundle="); ok {
				a, err := bundleAnnotations(filepath.Join(bundle, "config.json"))
				if err == nil {
					return a, nil
				}
				if errors.Is(err, fs.ErrPermission) {
					denied = err
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
