//go:build linux

package main

import (
	"fmt"
	"io"

	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/workload"
)

// workloads returns the resolver that names each event's workload, or
// nil, after one line on stderr, when the host has no cgroup v2 to name
// them from: tracing goes on without names. disable is --disable-hook:
// a prefix of workload.MkdirHook leaves new cgroups to inotify.
func workloads(stderr io.Writer, cfg workload.Config, disable []string) *workload.Resolver {
	cfg.NoMkdirTrace = session.HookDisabled(workload.MkdirHook, disable)
	// Warnings name runtime state files and what they held.
	cfg.Warn = func(msg string) { fmt.Fprintln(stderr, "sendtrace: warning:", format.Printable(msg)) }
	r, err := workload.NewResolver(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "sendtrace: warning: no workload names:", format.Printable(err.Error()))
		return nil
	}
	// Cgroups made from now on are mapped as they are made, so that one
	// removed right after its process exits is still named.
	if err := r.Watch(); err != nil {
		fmt.Fprintln(stderr, "sendtrace: warning: short-lived cgroups may be named by their process only:", format.Printable(err.Error()))
	} else if how, why := r.NewCgroups(); how != workload.MkdirHook {
		fmt.Fprintf(stderr, "sendtrace: new cgroups are named through %s, not %s (%s): one removed before sendtrace reads its inotify event is named by its process\n",
			how, workload.MkdirHook, format.Printable(fmt.Sprint(why)))
	}
	r.Prime()
	return r
}

// enrich adds the workload stage when there is a resolver.
func enrich(p *pipeline.Pipeline, r *workload.Resolver) *pipeline.Pipeline {
	if r != nil {
		p.Enrich(r)
	}
	return p
}

// cgroupNamesLine is the ready file's line saying how new cgroups are
// named: "cgroup-names\t" and workload.MkdirHook, "inotify", or "none"
// without a resolver or its watch.
func cgroupNamesLine(r *workload.Resolver) string {
	how := "none"
	if r != nil {
		if h, _ := r.NewCgroups(); h != "" {
			how = h
		}
	}
	return "cgroup-names\t" + how
}
