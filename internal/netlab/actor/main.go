// Command actor is the process the real-fault tests run inside a lab
// network namespace. It plays one side of a scenario with raw socket
// syscalls (so the errno it reports is exactly what the kernel returned,
// with no retries by the Go runtime's poller) and prints what it observed
// as one JSON object (see package report) on stdout.
//
// It runs as its own process so it has its own pid for `sendtrace --pid`,
// and it can stop at named phases (-ctl DIR): it writes DIR/NAME.ready and
// waits for DIR/NAME.go, so a tracer can be started against it before it
// does anything worth tracing.
//
// Usage:
//
//	actor server -mode reset|sink|discard|udp -listen ADDR:PORT [-ctl DIR]
//	actor client -to ADDR:PORT [-proto tcp|udp] [-ctl DIR] [send options]
//
// The client always stops at phase "start" (before it creates a socket)
// and, with -pause-connected, at phase "connected". The server announces
// phase "listening" and does not wait.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab/actorreport"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: actor server|client [flags]")
		os.Exit(2)
	}
	rep := &actorreport.Report{Role: os.Args[1], PID: os.Getpid(), Comm: comm()}
	var run func(ctx context.Context, rep *actorreport.Report) error
	switch os.Args[1] {
	case "server":
		run = serverMain(os.Args[2:])
	case "client":
		run = clientMain(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "actor: unknown role %q\n", os.Args[1])
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if err := run(ctx, rep); err != nil {
		rep.Error = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		fmt.Fprintf(os.Stderr, "actor: %v\n", err)
		os.Exit(1)
	}
}

// Flags both roles share. They are registered on each role's FlagSet.
var (
	ctlDir  *string
	timeout *time.Duration
)

func comm() string {
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// phase announces name and, when wait is set, blocks until the test
// releases it. Without -ctl the actor runs straight through.
func phase(ctx context.Context, name string, wait bool, socks []actorreport.Socket) error {
	if *ctlDir == "" {
		return nil
	}
	if err := actorreport.WritePhase(*ctlDir, actorreport.Phase{Name: name, PID: os.Getpid(), Sockets: socks}); err != nil {
		return err
	}
	if !wait {
		return nil
	}
	return actorreport.WaitGo(ctx, *ctlDir, name)
}
