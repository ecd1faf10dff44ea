package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sendtrace/sendtrace/internal/metrics"
	"github.com/spf13/cobra"
)

// serveFlags are the flags of `sendtrace serve`.
type serveFlags struct {
	listen       string
	events       bool
	maxWorkloads int
	seriesTTL    time.Duration
	peer         string
	peerMode     metrics.Peer
	maxPeers     int
	hostRoot     string
	eventBatch   time.Duration
	webConfig    string
	flight       flightFlags
	// serveRecordings serves windows of the flight recorder at
	// /recording.
	serveRecordings bool
}

const defaultListen = "127.0.0.1:9464"

func init() { subcommands = append(subcommands, newServeCmd) }

func newServeCmd() *cobra.Command {
	var sf serveFlags
	cmd := &cobra.Command{
		Use:   "serve [filters] [--listen ADDR]",
		Short: "Export failed sends, retransmits, resets and diagnoses per workload as Prometheus metrics",
		Long: `serve traces until SIGTERM or SIGINT and serves /metrics (Prometheus
exposition format) and /healthz. It prints the address it listens on (with
port 0, the port it got) and writes it to the ready file as "listen\tADDR",
then how it names cgroups made from now on as "cgroup-names\tHOW":
tracepoint/cgroup_mkdir, or inotify where that tracepoint cannot be read
(a line on stderr says why).
The counters are the kernel's exact totals,
read on every scrape, so a full ring buffer loses events but never counts.
Each count is labelled with its workload (a pod's container, a container, a
systemd unit, or the process name). Events go to stdout as JSON Lines unless
--events=false.

The default --listen address is loopback only. Binding another address
(0.0.0.0:9464 in a Kubernetes pod) lets anyone who can reach the port read
the names of the workloads on this host and how their sends fail: put it
behind a network policy or a firewall, and give --web.config.file for TLS,
client certificates and basic auth (the Prometheus exporters' web
configuration file, as node_exporter reads it). That file is read again on
every connection and request; SIGHUP checks it and says whether it is valid,
and serve goes on.`,
		Example: `  sudo sendtrace serve
  sudo sendtrace serve --listen 0.0.0.0:9464 --events=false --web.config.file /etc/sendtrace/web.yml`,
		Args: cobra.NoArgs,
	}
	tf := addTraceFlags(cmd, 16)
	fl := cmd.Flags()
	fl.StringVar(&sf.listen, "listen", defaultListen, "address for /metrics and /healthz (see the risk of non-loopback addresses above)")
	fl.BoolVar(&sf.events, "events", true, "write events to stdout as JSON Lines")
	fl.IntVar(&sf.maxWorkloads, "max-workloads", 500, "at most this many workload label values; a new one evicts the workload that failed least recently, if it has not failed for a minute, else it is counted as workload=\"other\"")
	fl.DurationVar(&sf.seriesTTL, "series-ttl", 10*time.Minute, "drop a workload's series this long after its last process exited")
	fl.StringVar(&sf.peer, "metrics-peer", "none", "peer in metric labels: none, addr (each address) or prefix/N (IPv4 and IPv6 addresses grouped by /N); counts stay exact")
	fl.IntVar(&sf.maxPeers, "max-peers", 100, "at most this many peer label values; the rest are counted as peer=\"other\"")
	fl.DurationVar(&sf.eventBatch, "event-batch", 200*time.Millisecond, "let events wait in the kernel up to this long, so the agent wakes once per batch rather than once per failure (the first event of each cgroup still wakes it at once); 0: read each event at once, at more CPU; counts are never delayed")
	fl.StringVar(&sf.hostRoot, "host-root", "/", "where the host's / is mounted (a container reading the host's /run and /sys/fs/cgroup under it)")
	sf.flight.register(fl)
	fl.BoolVar(&sf.serveRecordings, "serve-recordings", false, "serve windows of the flight recorder at /recording?since=15m (and the filters of report --flight), for sendtrace report URL: they name this host's connections, so serve them behind --web.config.file")
	fl.StringVar(&sf.webConfig, "web.config.file", "", "TLS, client certificates and basic auth: a web configuration file as Prometheus exporters read it (tls_server_config, basic_auth_users with bcrypt hashes); read again on every connection and request")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		opts, err := tf.options()
		if err != nil {
			return err
		}
		if strings.TrimSpace(sf.listen) == "" {
			return fmt.Errorf("invalid --listen %q: give an address and port, such as %s, or [::1]:0 for a free port (serve prints the one it got)", sf.listen, defaultListen)
		}
		if sf.seriesTTL <= 0 {
			return fmt.Errorf("invalid --series-ttl %s: give a duration above 0, such as 10m (series of workloads that are gone must expire)", sf.seriesTTL)
		}
		if sf.maxWorkloads < 1 {
			return fmt.Errorf("invalid --max-workloads %d: give 1 or more", sf.maxWorkloads)
		}
		if sf.eventBatch < 0 {
			return fmt.Errorf("invalid --event-batch %s: give 0 or more", sf.eventBatch)
		}
		if err := sf.flight.check(); err != nil {
			return err
		}
		if sf.serveRecordings && sf.flight.dir == "" {
			return errors.New("--serve-recordings serves the flight recorder's history: give --flight-dir DIR too")
		}
		opts.EventBatch = sf.eventBatch
		opts.NoTraffic = true
		if sf.peerMode, err = metrics.ParsePeer(sf.peer); err != nil {
			return err
		}
		if sf.maxPeers < 1 {
			return fmt.Errorf("invalid --max-peers %d: give 1 or more", sf.maxPeers)
		}
		return runServe(opts, sf, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}
