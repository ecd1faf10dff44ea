//go:build linux

package main

import (
	"fmt"
	"io"

	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/workload"
)

// workloads returns the resolver that names each event's workload, or
// nil, after one line on stderr, when the host has no cgroup v2 to name
// them from: tracing goes on without names.
func workloads(stderr io.Writer, cfg workload.Config) *workload.Resolver {
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
