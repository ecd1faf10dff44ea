package main

import (
	"fmt"
	"strings"

	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newCheckCmd) }

func newCheckCmd() *cobra.Command {
	var (
		btfPath   string
		disable   []string
		noSyscall bool
		output    string
		expect    []string
		expectF   string
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
			for _, e := range expect {
				if layer, want, ok := strings.Cut(e, "="); !ok || layer == "" || want == "" {
					return fmt.Errorf("invalid --expect %q: give LAYER=HOOK, such as send-return=fexit", e)
				}
			}
			return runCheck(session.Options{BTFPath: btfPath, Disable: disable, NoSyscallLayer: noSyscall}, output, expect, expectF, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&btfPath, "btf", "", "kernel BTF file, for kernels that do not publish /sys/kernel/btf/vmlinux")
	cmd.Flags().StringSliceVar(&disable, "disable-hook", nil, "do not use hooks starting with this (fexit, kretprobe, tp_btf/sock_send_length)")
	cmd.Flags().BoolVar(&noSyscall, "no-syscall-layer", false, "plan without the syscall layer, as live mode and record do with this flag")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().StringVar(&expectF, "expect-file", "", "fail when a layer degrades, or takes another hook, than this kernel's line of FILE allows (see test/hooks.expect)")
	cmd.Flags().StringSliceVar(&expect, "expect", nil, "fail unless LAYER uses a hook starting with HOOK (LAYER=HOOK, LAYER=degraded or LAYER=off); repeatable")
	return cmd
}
