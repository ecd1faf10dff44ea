//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/flight"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/host"
	"github.com/sendtrace/sendtrace/internal/metrics"
	"github.com/sendtrace/sendtrace/internal/outfile"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/render"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/tracer"
	"github.com/sendtrace/sendtrace/internal/workload"
)

// runServe traces into the metrics sink (and the JSON stream) and serves
// /metrics and /healthz until SIGTERM or SIGINT. SIGHUP checks the web
// configuration file (onHangup) and serve goes on.
func runServe(opts session.Options, sf serveFlags, stdout, stderr io.Writer) error {
	setup, err := checkWebConfig(sf.webConfig)
	if err != nil {
		return fmt.Errorf("invalid --web.config.file %s: %w: give a web configuration file as Prometheus exporters read it (docs/agent.md)", sf.webConfig, err)
	}
	if done, err := prepareTracing(opts); done || err != nil {
		return err
	}
	limitProcs()
	ctx, cancel := signalContext()
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go onHangup(ctx, hup, stderr, sf.webConfig, setup)

	names := workloads(stderr, hostWorkloadConfig(sf.hostRoot), opts.Disable)
	cfg := metrics.Config{Version: version, MaxWorkloads: sf.maxWorkloads, SeriesTTL: sf.seriesTTL,
		Peer: sf.peerMode, MaxPeers: sf.maxPeers}
	if names != nil {
		cfg.Names = names.PID
	}
	sink := metrics.New(cfg)
	reg := prometheus.NewRegistry()
	if err := reg.Register(sink); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	var rec *flight.Recorder
	if sf.flight.dir != "" {
		if rec, err = sf.flight.recorder(stderr); err != nil {
			return err
		}
		if err := reg.Register(rec); err != nil {
			return fmt.Errorf("register flight metrics: %w", err)
		}
	}
	ln, err := net.Listen("tcp", sf.listen)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("listen on %s: %w: give a free address with --listen", sf.listen, err)}
	}
	// The address bound, which says the port that port 0 got; the ready
	// file has it too.
	bound := ln.Addr().String()
	fmt.Fprintf(stderr, "sendtrace: serving /metrics and /healthz on %s://%s (%s)\n", setup.scheme(), bound, setup)
	if setup.basicAuth && !setup.tls {
		fmt.Fprintf(stderr, "sendtrace: --web.config.file %s asks for basic auth without TLS: passwords cross the network in the clear\n", format.Printable(sf.webConfig))
	}
	opts.ReadyLines = append(opts.ReadyLines, "listen\t"+bound, cgroupNamesLine(names))
	var running atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !running.Load() {
			http.Error(w, "not tracing yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if !sf.serveRecordings {
		mux.HandleFunc("/recording", recordingsOff)
	} else {
		mux.Handle("/recording", recordingHandler(sf.flight.dir, stderr))
		fmt.Fprintf(stderr, "sendtrace: serving windows of the flight recorder in %s at %s://%s/recording\n", format.Printable(sf.flight.dir), setup.scheme(), bound)
		if !setup.basicAuth && !setup.clientCerts {
			fmt.Fprintf(stderr, "sendtrace: /recording has no authentication: whoever reaches %s reads this host's connections; give --web.config.file with basic_auth_users or client certificates\n", bound)
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(stderr, "sendtrace: ", 0)}
	served := make(chan error, 1)
	go func() {
		// TLS and authentication as the web configuration file says, or
		// plain HTTP without one.
		err := web.Serve(ln, srv, &web.FlagConfig{WebConfigFile: &sf.webConfig}, webLogger(stderr))
		if !errors.Is(err, http.ErrServerClosed) {
			cancel() // nothing serves the metrics: stop tracing
		}
		served <- err
	}()

	sinks := []pipeline.Sink{sink, &beganSink{running: &running}}
	if sf.events {
		sinks = append(sinks, render.NewJSON(stdout))
	}
	var snap *host.Snapshot
	if rec != nil {
		sinks = append(sinks, rec)
		// Each segment is a recording: its header holds the sysctls.
		if snap, err = host.ReadSysctls(0); err != nil {
			return fmt.Errorf("read sysctls: %w", err)
		}
	}
	p := enrich(pipeline.New(diagnose.New(diagnose.DefaultConfig()), sinks...), names)
	describe := func(d *session.Description) error {
		warnDegraded(stderr, d.Hooks)
		if snap != nil {
			snap.AddTo(d)
		}
		return nil
	}
	_, runErr := tracer.Run(ctx, opts, version, describe, p, nil)
	running.Store(false)
	// A stopped agent is not ready: whoever watches the file (a
	// supervisor, a test) must not take a stale one for a live agent.
	if opts.ReadyFile != "" {
		if err := outfile.RemoveReady(opts.ReadyFile); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}

	shutdown, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	if err := srv.Shutdown(shutdown); err != nil {
		return errors.Join(runErr, fmt.Errorf("stop serving metrics: %w", err))
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(runErr, fmt.Errorf("serve metrics: %w", err))
	}
	if runErr != nil {
		return explain(runErr)
	}
	return nil
}

// hostWorkloadConfig points the resolver at the host's mounts under root.
func hostWorkloadConfig(root string) workload.Config {
	if root == "" || root == "/" {
		return workload.Config{}
	}
	return workload.Config{
		CgroupRoot: filepath.Join(root, "sys/fs/cgroup"),
		RunDir:     filepath.Join(root, "run"),
		HostRoot:   root,
	}
}

// beganSink marks the session running for /healthz once every probe is
// attached.
type beganSink struct{ running *atomic.Bool }

func (b *beganSink) Begin(*session.Description) error {
	b.running.Store(true)
	return nil
}
func (b *beganSink) Event(*events.Event) error { return nil }
func (b *beganSink) End(*session.End) error {
	b.running.Store(false)
	return nil
}
