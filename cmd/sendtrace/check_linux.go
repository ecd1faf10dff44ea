//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/hookexpect"
	"github.com/sendtrace/sendtrace/internal/host"
	"github.com/sendtrace/sendtrace/internal/loader"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/tracer"
)

// runCheck plans and attaches every layer, prints the plan, detaches,
// and fails when the plan differs from --expect.
func runCheck(opts session.Options, output string, expect []string, expectFile string, w io.Writer) error {
	var want *hookexpect.File
	if expectFile != "" {
		f, err := os.Open(expectFile)
		if err != nil {
			return fmt.Errorf("--expect-file: %w: give the file of expected hooks, such as test/hooks.expect", err)
		}
		want, err = hookexpect.Parse(f, expectFile)
		f.Close()
		if err != nil {
			return fmt.Errorf("--expect-file: %w", err)
		}
	}
	if done, err := prepareTracing(opts); done || err != nil {
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
	if want != nil {
		release := host.KernelRelease()
		if bad := want.Check(plan, release, hookexpect.Label(release, runtime.GOARCH)); len(bad) > 0 {
			// One line each: main prints each error errors.Join holds
			// on its own line.
			errs := make([]error, len(bad))
			for i, b := range bad {
				errs[i] = errors.New(b)
			}
			return &exitError{code: 1, err: errors.Join(errs...)}
		}
	}
	return checkExpect(plan, expect)
}

func writeCheckJSON(w io.Writer, hooks session.Plan) error {
	hz, read := loader.KernelHZ()
	b, err := json.Marshal(struct {
		Kernel string       `json:"kernel"`
		HZ     int          `json:"hz"`
		HZRead bool         `json:"hz_from_config"`
		Hooks  session.Plan `json:"hooks"`
	}{host.KernelRelease(), hz, read, hooks})
	if err != nil {
		return err
	}
	_, err = w.Write(append(events.EscapeJSONControls(b), '\n'))
	return err
}

// checkWidth is the widest line check prints: a terminal of 100 columns
// shows it without wrapping.
const checkWidth = 100

// writeCheckTable prints the plan in checkWidth columns: the reasons wrap
// inside their column, and the refused candidates, whose kernel messages
// are long, follow the table one per paragraph.
func writeCheckTable(w io.Writer, hooks session.Plan) error {
	fmt.Fprintf(w, "kernel %s\n", format.Printable(host.KernelRelease()))
	rows := make([][4]string, 0, len(hooks))
	widths := [3]int{len("LAYER"), len("HOOK"), len("STATUS")}
	for _, h := range hooks {
		// A hook's candidates are one to a line; everything the
		// kernel or the planner said is escaped.
		hook := strings.ReplaceAll(format.Printable(h.Hook), ",", ",\n")
		if h.Status() != session.StatusOn {
			hook = "-"
		}
		r := [4]string{format.Printable(h.Layer), hook, statusText(h.Status()), format.Printable(h.Why)}
		for i := range widths {
			for _, line := range strings.Split(r[i], "\n") {
				widths[i] = max(widths[i], len(line))
			}
		}
		rows = append(rows, r)
	}
	// Five borders and a space either side of each of the four cells.
	whyWidth := max(checkWidth-widths[0]-widths[1]-widths[2]-5-8, 20)
	tw := format.Table(w, []string{"LAYER", "HOOK", "STATUS", "WHY"}, nil)
	for _, r := range rows {
		if err := tw.Append(r[0], r[1], r[2], format.WrapWords(r[3], whyWidth, "")); err != nil {
			return err
		}
	}
	if err := tw.Render(); err != nil {
		return err
	}
	refused := false
	for _, h := range hooks {
		for _, tried := range h.Tried {
			if !refused {
				fmt.Fprintln(w, "Refused candidates, with the kernel's answer:")
				refused = true
			}
			fmt.Fprintf(w, "  %s\n", format.WrapWords(format.Printable(h.Layer+": "+tried), checkWidth-2, "    "))
		}
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
