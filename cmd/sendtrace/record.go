package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sendtrace/sendtrace/internal/outfile"
)

func init() { subcommands = append(subcommands, newRecordCmd) }

func newRecordCmd() *cobra.Command {
	var (
		out    string
		force  bool
		status time.Duration
		win    windowFlags
	)
	cmd := &cobra.Command{
		Use:   "record -o FILE [filters] [--duration D]",
		Short: "Record failed sends and their kernel context to a file for later report and diff",
		Long: `record writes the event stream to FILE as JSON Lines: a header (host, kernel,
boot time, filters, hooks and the sysctls that govern sends), the events in
the same schema as -o json, and a footer with the kernel's exact totals.
FILE is compressed when it ends in .gz or .zst. Records are flushed to the
file every 500 ms and fsynced at a clean stop, so a recording cut short by
kill -9 or a full disk stays readable up to its last complete record.`,
		Example: `  sudo sendtrace record -o incident.jsonl.zst --dst 198.18.0.0/15 --duration 10m
  sendtrace report incident.jsonl.zst
  zstdcat incident.jsonl.zst | jq 'select(.kind=="send_error")'
  sendtrace record --from-flight /var/lib/sendtrace/flight --since 30m --until 10m -o incident.jsonl.zst`,
		Args: cobra.NoArgs,
	}
	// 16 MiB rides out about 100 ms of writer stalls at 500k events/s;
	// the buffer is mapped into the process, so it counts in its RSS.
	tf := addTraceFlags(cmd, 16)
	cmd.Flags().StringVarP(&out, "output", "o", "", "recording file (.gz or .zst to compress); required")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite FILE if it exists (by default an existing recording is never replaced)")
	cmd.Flags().DurationVar(&status, "status-interval", 5*time.Second, "how often to print a status line on stderr; 0 turns it off")
	win.register(cmd.Flags(), "from-flight", "write the window --since (and --until) of the flight recording that sendtrace serve --flight-dir keeps in this directory to FILE, rather than tracing")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if out == "" {
			return errors.New("missing -o FILE: say where to write the recording, e.g. -o incident.jsonl.zst")
		}
		if win.dir != "" {
			return recordFromFlight(&win, out, force, cmd.ErrOrStderr())
		}
		if win.since != "" || win.until != "" {
			return errors.New("--since and --until pick a window of a flight recording: give --from-flight DIR")
		}
		// Before anything is loaded: an earlier incident's recording is
		// worth more than this run, and the file this run reads (--btf)
		// is never replaced, --force or not.
		if err := outfile.Check(out, force, tf.btf); err != nil {
			return err
		}
		if tf.readyFile != "" && (tf.readyFile == out || outfile.Same(tf.readyFile, out)) {
			return fmt.Errorf("--ready-file %s is the recording -o %s: give the ready file another name", tf.readyFile, out)
		}
		opts, err := tf.options()
		if err != nil {
			return err
		}
		// Rates in the footer (failed sends per 1,000 sends) need every
		// successful send counted.
		opts.CountSends = true
		// Joining recordings from the two ends of a connection needs
		// each handshake (its ISNs) even when nothing failed on it. A
		// state change is per connection, never per send.
		opts.AllStateChanges = true
		return runRecord(opts, out, force, status, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}
