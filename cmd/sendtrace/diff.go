package main

import (
	"bufio"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/report"
)

func init() { subcommands = append(subcommands, newDiffCmd) }

func newDiffCmd() *cobra.Command {
	var (
		output string
		page   htmlFlags
	)
	cmd := &cobra.Command{
		Use:   "diff BEFORE AFTER",
		Short: "Compare two recordings: sysctls that differ, and failure rates and time to failure normalised by traffic",
		Long: `diff shows which sysctls differ between two recordings, then how the
kernel behaved in each: failed sends per 1,000 sends, retransmitted
segments per MB sent, failed sends and retransmitted segments per
connection, each errno's rate, and
the time from the first sending of the data a connection never got
acknowledged to its error report, as its diagnosis gives it (p50, p95,
max), overall and per destination found in both.

A change is called real only when both recordings have at least 20 events of
it and the rates differ by more than two standard errors (counts treated as
Poisson); times to failure need at least 5 failed connections on each side
whose ranges do not overlap. Smaller changes are shown as "too few to tell"
or "within noise", never as a bare percentage. Rates per send need the
kernel's per-destination send counters; a recording without them says so.
--html FILE writes the same as one self-contained page, with the times to
failure drawn side by side.`,
		Example: `  sendtrace diff before.jsonl.zst after.jsonl.zst
  sendtrace diff --html diff.html before.jsonl.zst after.jsonl.zst
  sendtrace diff -o json before.jsonl after.jsonl | jq .time_to_failure`,
		Args: recordingArgs("BEFORE", "AFTER"),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	page.register(cmd.Flags(), false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if output != "text" && output != "json" {
			return fmt.Errorf("invalid --output %q: give text or json", output)
		}
		// A recording and a copy of it are refused, not warned about: the
		// diff of one session with itself is "no change" everywhere, which
		// reads as a finding (the change did nothing) when it is only the
		// wrong file given, and it has nothing else to show.
		if err := record.FindDuplicate(args); err != nil {
			return fmt.Errorf("%w: give two different recordings, one made before the change and one after", err)
		}
		if page.path != "" {
			if output != "text" {
				return errors.New("--html writes the diff as a page: leave out -o")
			}
			return page.writeDiff(cmd.OutOrStdout(), args[0], args[1])
		}
		before, err := report.Load(args[0], report.Options{Diagnose: diagnose.DefaultConfig()})
		if err != nil {
			return err
		}
		after, err := report.Load(args[1], report.Options{Diagnose: diagnose.DefaultConfig()})
		if err != nil {
			return err
		}
		d := report.Compare(before, after)
		w := bufio.NewWriter(cmd.OutOrStdout())
		if output == "json" {
			err = report.WriteJSON(w, d)
		} else {
			err = report.WriteDiffText(w, d)
		}
		return errors.Join(err, w.Flush())
	}
	return cmd
}
