package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/sendtrace/sendtrace/internal/loader"
	"github.com/sendtrace/sendtrace/internal/tracer"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func init() { subcommands = append(subcommands, newCheckCmd) }

func newCheckCmd() *cobra.Command {
	var (
		btfPath   string
		disable   []string
		noSyscall bool
		output    string
		expect    []string
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Show which kernel hook serves each layer on this kernel, and why the others do not",
		Long: `check loads and attaches every program the way a session would, prints the
hook chosen for each layer with the reason, and the candidates that were
refused with the kernel's answer, then detaches everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("invalid --output %q: give text or json", output)
			}
			if err := preflight(); err != nil {
				return err
			}
			if done, err := withBTFFile(btfPath); done || err != nil {
				return err
			}
			hooks, err := tracer.Plan(tracer.Options{BTFPath: btfPath, Disable: disable, NoSyscallLayer: noSyscall})
			if err != nil {
				return explain(err)
			}
			if output == "json" {
				err = writeCheckJSON(cmd.OutOrStdout(), hooks)
			} else {
				err = writeCheckTable(cmd.OutOrStdout(), hooks)
			}
			if err != nil {
				return err
			}
			return checkExpect(hooks, expect)
		},
	}
	cmd.Flags().StringVar(&btfPath, "btf", "", "kernel BTF file, for kernels that do not publish /sys/kernel/btf/vmlinux")
	cmd.Flags().StringSliceVar(&disable, "disable-hook", nil, "do not use hooks starting with this (fexit, kretprobe, tp_btf/sock_send_length)")
	cmd.Flags().BoolVar(&noSyscall, "no-syscall-layer", false, "plan without the syscall layer, as live mode and record do with this flag")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().StringSliceVar(&expect, "expect", nil, "fail unless LAYER uses a hook starting with HOOK (LAYER=HOOK, LAYER=degraded or LAYER=off); repeatable")
	return cmd
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func writeCheckJSON(w io.Writer, hooks []tracer.Hook) error {
	hz, read := loader.KernelHZ()
	return json.NewEncoder(w).Encode(struct {
		Kernel string        `json:"kernel"`
		HZ     int           `json:"hz"`
		HZRead bool          `json:"hz_from_config"`
		Hooks  []tracer.Hook `json:"hooks"`
	}{kernelRelease(), hz, read, hooks})
}

func writeCheckTable(w io.Writer, hooks []tracer.Hook) error {
	fmt.Fprintf(w, "kernel %s\n", kernelRelease())
	tw := tablewriter.NewWriter(w)
	tw.Header("LAYER", "HOOK", "STATUS", "WHY", "REFUSED")
	for _, h := range hooks {
		status, hook := "ok", h.Hook
		switch {
		case h.Off:
			status, hook = "off", "-"
		case !h.Active:
			status, hook = "DEGRADED", "-"
		}
		if err := tw.Append(h.Layer, hook, status, h.Why, strings.Join(h.Tried, "\n")); err != nil {
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
func checkExpect(hooks []tracer.Hook, expect []string) error {
	var bad []string
	for _, e := range expect {
		layer, want, ok := strings.Cut(e, "=")
		if !ok || layer == "" || want == "" {
			return fmt.Errorf("invalid --expect %q: give LAYER=HOOK, such as send-return=fexit", e)
		}
		found := false
		for _, h := range hooks {
			if h.Layer != layer {
				continue
			}
			found = true
			got := h.Hook
			switch {
			case h.Off:
				got = "off"
			case !h.Active:
				got = "degraded"
			}
			if !strings.HasPrefix(got, want) {
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
