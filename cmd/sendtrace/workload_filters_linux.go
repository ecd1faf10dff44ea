//go:build linux

package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/workload"
)

// resolve adds the cgroup ids of the named workloads to f.Cgroups. A name
// that matches nothing running is an error: filtering on it would show
// nothing, silently.
func (wf *workloadFilters) resolve(f *session.Filters) error {
	if wf.empty() {
		return nil
	}
	var denied string
	r, err := workload.NewResolver(workload.Config{Warn: func(msg string) { denied = msg }})
	if err != nil {
		return fmt.Errorf("--container, --pod and --unit: %w", err)
	}
	add := func(flag, value string, match func(*events.Workload) bool) error {
		ids := r.Matching(match)
		if len(ids) == 0 {
			hint := ""
			if flag == "--pod" && denied != "" {
				hint = " (" + denied + ")"
			}
			return fmt.Errorf("%s %s: no such workload is running on this host%s", flag, value, hint)
		}
		for _, id := range ids {
			if !slices.Contains(f.Cgroups, id) {
				f.Cgroups = append(f.Cgroups, id)
			}
		}
		return nil
	}
	for _, c := range wf.containers {
		c = strings.ToLower(c)
		if !validContainerID(c) {
			return fmt.Errorf("invalid --container %q: give a container id (at least 4 hex digits)", c)
		}
		if err := add("--container", c, func(w *events.Workload) bool { return w.ID != "" && strings.HasPrefix(w.ID, c) }); err != nil {
			return err
		}
	}
	for _, p := range wf.pods {
		ns, name, err := parsePod(p)
		if err != nil {
			return err
		}
		if err := add("--pod", p, func(w *events.Workload) bool { return w.Namespace == ns && w.Pod == name }); err != nil {
			return err
		}
	}
	for _, u := range wf.units {
		u = unitName(u)
		if err := add("--unit", u, func(w *events.Workload) bool { return w.Unit == u }); err != nil {
			return err
		}
	}
	return nil
}
