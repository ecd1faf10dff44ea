package main

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/report"
)

func init() { subcommands = append(subcommands, newReportCmd) }

func newReportCmd() *cobra.Command {
	var (
		output string
		conn   string
		top    int
		bucket time.Duration
		page   htmlFlags
		win    windowFlags
		agents agentFlags
	)
	cmd := &cobra.Command{
		Use:   "report FILE|URL [FILE|URL...]",
		Short: "Summarise a recording: failing destinations and processes, failures over time, one connection's timeline",
		Long: `report rebuilds the live summary tables from a recording made with
sendtrace record, then lists the top failing destinations and processes, the
connections that failed with their time to failure, and failures over time
in fixed buckets. --conn COOKIE shows every event of one socket in order.
--html FILE writes all of it as one self-contained page instead, with each
failed connection drawn (sequence, RTO, Send-Q, resets, errors on one time
axis); the page loads nothing from anywhere, so it opens offline.

Plain, .gz and .zst files are read alike. A recording whose recorder was
killed is read up to its last complete record, and the report says that the
footer is missing.

Given recordings made at the same time on different hosts (or network
namespaces), report joins the two ends of each TCP connection by their
initial sequence numbers, which survive NAT, and says in its "Both ends"
section who reset each failed connection (the peer, a middlebox, this
host) and whether retransmitted data reached the other end. With --html, the
page draws both sockets of each failed connection in two lanes on one time
axis, the other end's clock corrected by the estimated offset.`,
		Example: `  sendtrace report incident.jsonl.zst
  sendtrace report --html incident.html incident.jsonl.zst
  sendtrace report --conn 16435 incident.jsonl.zst
  sendtrace report -o json incident.jsonl.zst | jq .time_to_failure
  sendtrace report client.jsonl.zst server.jsonl.zst
  sendtrace report --html both.html client.jsonl.zst server.jsonl.zst
  sendtrace report --flight /var/lib/sendtrace/flight --since 15m
  sendtrace report --flight /var/lib/sendtrace/flight --since 2026-12-06T20:00:00Z --until 20m --pod shop/cart-7d9f8b6c5-x2kqz
  sendtrace report https://node-a:9464 https://node-b:9464 --since 20m --auth-file sre.auth --ca-file ca.crt`,
		Args: func(cmd *cobra.Command, args []string) error {
			if win.dir != "" {
				if len(args) > 0 {
					return fmt.Errorf("--flight reads its window from the flight directory: leave out the files (%s)", strings.Join(args, " "))
				}
				return nil
			}
			return reportArgs(cmd, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&output, "output", "o", "text", "text or json")
	fl.StringVar(&conn, "conn", "", "show the timeline of the socket with this cookie (as in the failed connections table, or ss -e)")
	fl.IntVar(&top, "top", 10, "rows in the destination and process tables")
	fl.DurationVar(&bucket, "bucket", 0, "width of the failures-over-time buckets (default: chosen from the recording's length)")
	page.register(fl, true)
	win.register(fl, "flight", "read the window --since (and --until) of the flight recording that sendtrace serve --flight-dir keeps in this directory, as one recording")
	win.registerFilters(fl)
	agents.register(fl)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if output != "text" && output != "json" {
			return fmt.Errorf("invalid --output %q: give text or json", output)
		}
		if bucket < 0 || (bucket > 0 && bucket < time.Millisecond) {
			return fmt.Errorf("invalid --bucket %s: give a width of at least 1ms, such as 1s or 5m", bucket)
		}
		if page.path != "" {
			// Before a window is fetched, which may take a while.
			if err := page.refuse(true, args...); err != nil {
				return err
			}
		}
		files, err := openRecordings(args, &win, &agents, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer files.remove()
		args = files.paths
		if len(args) > 1 {
			if err := record.FindDuplicate(args); err != nil {
				return fmt.Errorf("%w: give one recording per end, made at the same time", files.rename(err))
			}
			if conn != "" {
				return fmt.Errorf("--conn takes one recording, got %d: give one file, or leave it out to join the ends of the connections", len(args))
			}
			if page.path != "" {
				if output != "text" {
					return errors.New("--html writes the both-ends report as a page: leave out -o")
				}
				return page.writeBothEnds(cmd.OutOrStdout(), files)
			}
			return reportBothEnds(cmd.OutOrStdout(), files, output)
		}
		if page.path != "" {
			if conn != "" || output != "text" {
				return errors.New("--html writes the whole report as a page: leave out --conn and -o")
			}
			return page.writeReport(cmd.OutOrStdout(), files, args[0], top, bucket)
		}
		var cookie uint64
		if conn != "" {
			n, err := strconv.ParseUint(conn, 10, 64)
			if err != nil || n == 0 {
				return fmt.Errorf("invalid --conn %q: give a socket cookie, a positive number from the failed connections table", conn)
			}
			cookie = n
		}
		rec, err := loadReport(files, args[0], report.Options{Conn: cookie})
		if err != nil {
			return err
		}
		w := bufio.NewWriter(cmd.OutOrStdout())
		if cookie != 0 {
			if output == "json" {
				tl, err := report.BuildTimeline(rec, cookie)
				if err != nil {
					return err
				}
				err = report.WriteJSON(w, tl)
				return errors.Join(err, w.Flush())
			}
			err = report.WriteTimelineText(w, rec, cookie)
			return errors.Join(err, w.Flush())
		}
		rep := report.Build(rec, report.BuildOptions{Top: top, Bucket: bucket})
		if output == "json" {
			err = report.WriteJSON(w, rep)
		} else {
			err = report.WriteText(w, rec, rep)
		}
		return errors.Join(err, w.Flush())
	}
	return cmd
}
