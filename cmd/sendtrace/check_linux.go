//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/host"
	"github.com/sendtrace/sendtrace/internal/loader"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/tracer"
)

// runCheck plans and attaches every layer, prints the plan, detaches,
// and fails when the plan differs from --expect.
func runCheck(opts session.Options, output string, expect []string, w io.Writer) error {
	if done, err := withBTFFile(opts.BTFPath); done || err != nil {
		return err
	}
	if err := preflight(); err != nil {
		return err
	}
	plan, err := tracer.Plan(opts)
	if err != nil {
		return explain(err)
	}
	if output == "json" {
		err = writeCheckJSON(w, plan)
	} else {
		err = writeCheckTable(w, plan)
	}
	if err != nil {
		return err
	}
	return checkExpect(plan, expect)
}

func writeCheckJSON(w io.Writer, hooks session.Plan) error {
	hz, read := loader.KernelHZ()
	return json.NewEncoder(w).Encode(struct {
		Kernel string       `json:"kernel"`
		HZ     int          `json:"hz"`
		HZRead bool         `json:"hz_from_config"`
		Hooks  session.Plan `json:"hooks"`
	}{host.KernelRelease(), hz, read, hooks})
}

func writeCheckTable(w io.Writer, hooks session.Plan) error {
	fmt.Fprintf(w, "kernel %s\n", host.KernelRelease())
	tw := format.Table(w, []string{"LAYER", "HOOK", "STATUS", "WHY", "REFUSED"}, nil)
	for _, h := range hooks {
		hook := h.Hook
		if h.Status() != session.StatusOn {
			hook = "-"
		}
		if err := tw.Append(h.Layer, hook, statusText(h.Status()), h.Why, strings.Join(h.Tried, "; ")); err != nil {
			return err
		}
	}
	if err := tw.Render(); err != nil {
		return err
	}
	hz, read := loader.KernelHZ()
	src := "from the kernel config"
	if !read {
		src = "assumed: no kernel config published; TCP idle times may be off by HZ/250"
	}
	fmt.Fprintf(w, "CONFIG_HZ=%d (%s)\n", hz, src)
	return nil
}

// checkExpect fails when the plan differs from what the caller expects, so
// a kernel that silently picks the wrong layer fails a test.
func checkExpect(hooks session.Plan, expect []string) error {
	var bad []string
	for _, e := range expect {
		layer, want, _ := strings.Cut(e, "=")
		found := false
		for _, h := range hooks {
			if h.Layer != layer {
				continue
			}
			found = true
			if got := h.Shown(); !strings.HasPrefix(got, want) {
				bad = append(bad, fmt.Sprintf("%s uses %q, expected %q", layer, got, want))
			}
		}
		if !found {
			return fmt.Errorf("invalid --expect %q: unknown layer %q", e, layer)
		}
	}
	if len(bad) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("hook plan differs from --expect: %s", strings.Join(bad, "; "))}
	}
	return nil
}

// statusText shouts only the state that needs attention.
func statusText(s session.Status) string {
	if s == session.StatusDegraded {
		return "DEGRADED"
	}
	return string(s)
}
