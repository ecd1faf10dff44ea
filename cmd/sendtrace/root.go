package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "sendtrace [--pid N]... [filters] [-o text|json] [--duration D]",
		Short: "Show why sends are failing: process, socket, errno, destination and kernel cause",
		Long: `sendtrace shows every failed send on this machine (or of the processes you
name), with the errno the application got, the socket's destination and the
size of the send, and the retransmits, resets and error reports that came
before it, each attributed to the socket's owner. On exit it prints a summary
whose totals are exact even when the stream lost events.`,
		Example: `  sudo sendtrace --pid 1234
  sudo sendtrace --dst 198.18.0.0/15 --errno ECONNRESET -o json
  sudo sendtrace check`,
		Version:       version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	tf := addTraceFlags(cmd, 16)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "event format: text or json (JSON Lines on stdout, summary on stderr)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		opts, err := tf.options()
		if err != nil {
			return err
		}
		if output != "text" && output != "json" {
			return fmt.Errorf("invalid --output %q: give text or json", output)
		}
		return runLive(opts, output, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}
