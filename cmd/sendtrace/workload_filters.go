package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// workloadFilters are the filters that name workloads; they are resolved
// to cgroup ids when the session starts, and filter in the kernel as
// --cgroup does.
type workloadFilters struct {
	containers []string
	pods       []string
	units      []string
}

func addWorkloadFilterFlags(fl *pflag.FlagSet) *workloadFilters {
	wf := &workloadFilters{}
	fl.StringSliceVar(&wf.containers, "container", nil, "only this container (Docker, Podman, containerd or CRI-O id, or a prefix of it) running now; repeatable")
	fl.StringSliceVar(&wf.pods, "pod", nil, "only the containers of this Kubernetes pod, NAMESPACE/NAME, running now on this host; repeatable")
	fl.StringSliceVar(&wf.units, "unit", nil, "only this systemd unit (nginx.service, or nginx); repeatable")
	return wf
}

func (wf *workloadFilters) empty() bool {
	return len(wf.containers)+len(wf.pods)+len(wf.units) == 0
}

// parsePod splits NAMESPACE/NAME.
func parsePod(s string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("invalid --pod %q: give NAMESPACE/NAME, such as shop/cart-7d9f8b6c5-x2kqz", s)
	}
	return ns, name, nil
}

// unitName adds .service to a unit named without a type.
func unitName(s string) string {
	if !strings.Contains(s, ".") {
		return s + ".service"
	}
	return s
}

func validContainerID(s string) bool {
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
