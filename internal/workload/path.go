// Package workload names what owns a cgroup (a Kubernetes pod's container,
// a Docker, Podman, containerd or CRI-O container, a systemd unit) from the
// cgroup path and the container runtime's state on the host, with no API
// server. Names are resolved in user space and cached per cgroup id.
package workload

import (
	"path"
	"regexp"
	"strings"

	"github.com/sendtrace/sendtrace/internal/events"
)

// scopeRuntimes are the systemd scope prefixes container runtimes use
// (cgroup driver systemd), with the kind each one names.
var scopeRuntimes = []struct{ prefix, kind string }{
	{"docker-", events.WorkloadDocker},
	{"libpod-", events.WorkloadPodman},
	{"cri-containerd-", events.WorkloadContainerd},
	{"crio-", events.WorkloadCRIO},
}

var (
	containerID = regexp.MustCompile(`^[0-9a-f]{64}$`)
	podDir      = regexp.MustCompile(`^pod[0-9a-f_-]+$|^kubepods-[a-z]+-pod[0-9a-f_]+\.slice$|^kubepods-pod[0-9a-f_]+\.slice$`)
)

// FromPath names the workload a cgroup v2 path belongs to, from the path
// alone: the container id and runtime, or the systemd unit. It returns
// nil for anything else (a login session, the root cgroup), which is then
// named by its process.
func FromPath(p string) *events.Workload {
	p = path.Clean("/" + p)
	base := path.Base(p)
	parent := path.Base(path.Dir(p))
	for _, r := range scopeRuntimes {
		id, ok := strings.CutPrefix(base, r.prefix)
		if !ok {
			continue
		}
		id, ok = strings.CutSuffix(id, ".scope")
		if ok && containerID.MatchString(id) {
			return container(r.kind, id)
		}
	}
	if containerID.MatchString(base) {
		switch {
		case parent == "docker":
			return container(events.WorkloadDocker, base)
		case parent == "libpod_parent" || strings.HasPrefix(parent, "libpod-"):
			return container(events.WorkloadPodman, base)
		case podDir.MatchString(parent) || strings.Contains(p, "/kubepods"):
			return container(events.WorkloadContainer, base)
		}
	}
	if strings.HasSuffix(base, ".service") {
		return (&events.Workload{Kind: events.WorkloadSystemd, Name: base, Unit: base}).Finish()
	}
	return nil
}

// container names a container by its id, until the runtime's state
// names its pod.
func container(kind, id string) *events.Workload {
	return (&events.Workload{Kind: kind, Name: id[:events.ShortContainerID], ID: id}).Finish()
}
