package events

import "strings"

// Workload names what owns an event's socket, as a person running a fleet
// calls it: a Kubernetes pod's container, a Docker or Podman container, a
// systemd unit, or else the process. It is resolved from the event's
// cgroup in user space, once per cgroup, and shared by every event of that
// cgroup: treat it as read-only.
type Workload struct {
	Kind      string // one of the Workload* kinds
	Name      string // the container id, unit, pod or process name the kind is known by
	ID        string // full container id, when a container
	Pod       string // Kubernetes pod name
	Namespace string // Kubernetes namespace
	Container string // Kubernetes container name
	Unit      string // systemd unit
	short     string
}

// Workload kinds.
const (
	WorkloadKubernetes = "k8s"
	WorkloadDocker     = "docker"
	WorkloadPodman     = "podman"
	WorkloadContainerd = "containerd"
	WorkloadCRIO       = "crio"
	// WorkloadContainer is a container whose runtime the cgroup path does
	// not say (a cgroupfs-driver Kubernetes pod without readable runtime
	// state).
	WorkloadContainer = "container"
	WorkloadSystemd   = "systemd"
	WorkloadProcess   = "process"
)

// ShortContainerID is how many hex digits of a container id are shown, as
// docker ps does.
const ShortContainerID = 12

// String is the short form: k8s/NAMESPACE/POD/CONTAINER, docker/ID12,
// systemd/UNIT, process/COMM. It is what text output shows and what the
// metrics' workload label holds.
func (w *Workload) String() string {
	if w == nil {
		return ""
	}
	if w.short == "" {
		w.short = w.compose()
	}
	return w.short
}

func (w *Workload) compose() string {
	switch w.Kind {
	case WorkloadKubernetes:
		parts := []string{w.Kind, w.Namespace, w.Pod}
		if w.Container != "" {
			parts = append(parts, w.Container)
		}
		return strings.Join(parts, "/")
	case WorkloadSystemd:
		return w.Kind + "/" + w.Unit
	}
	name := w.Name
	if name == "" && w.ID != "" {
		name = w.ID
	}
	if w.ID != "" && name == w.ID && len(name) > ShortContainerID {
		name = name[:ShortContainerID]
	}
	return w.Kind + "/" + name
}

// Finish computes the short form once, so that concurrent readers of a
// shared Workload never write to it.
func (w *Workload) Finish() *Workload {
	w.short = w.compose()
	return w
}

// appendWorkloadJSON appends the "workload" string and the
// "workload_info" object (docs/json-schema.md) when the event has one.
func appendWorkloadJSON(dst []byte, w *Workload) []byte {
	if w == nil {
		return dst
	}
	dst = append(dst, `,"workload":`...)
	dst = AppendJSONString(dst, w.String())
	dst = append(dst, `,"workload_info":{"kind":`...)
	dst = AppendJSONString(dst, w.Kind)
	dst = append(dst, `,"name":`...)
	dst = AppendJSONString(dst, w.Name)
	for _, f := range [...]struct{ key, v string }{
		{`,"id":`, w.ID}, {`,"pod":`, w.Pod}, {`,"namespace":`, w.Namespace},
		{`,"container":`, w.Container}, {`,"unit":`, w.Unit},
	} {
		if f.v != "" {
			dst = append(dst, f.key...)
			dst = AppendJSONString(dst, f.v)
		}
	}
	return append(dst, '}')
}

// jsonWorkload mirrors "workload_info" for decoding.
type jsonWorkload struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	ID        string `json:"id"`
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	Container string `json:"container"`
	Unit      string `json:"unit"`
}

func (j *jsonWorkload) workload() *Workload {
	if j == nil || j.Kind == "" {
		return nil
	}
	w := Workload{Kind: j.Kind, Name: j.Name, ID: j.ID, Pod: j.Pod, Namespace: j.Namespace, Container: j.Container, Unit: j.Unit}
	return w.Finish()
}

func (s *scanner) workloadField(key []byte, w *jsonWorkload) bool {
	switch string(key) {
	case "kind":
		return s.strField(&w.Kind)
	case "name":
		return s.strField(&w.Name)
	case "id":
		return s.strField(&w.ID)
	case "pod":
		return s.strField(&w.Pod)
	case "namespace":
		return s.strField(&w.Namespace)
	case "container":
		return s.strField(&w.Container)
	case "unit":
		return s.strField(&w.Unit)
	}
	return false
}
