// Command sendtrace shows why sends are failing: which process, which
// socket, which errno, which destination, and what the kernel saw before.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// subcommands is filled by each command's file, so commands stay
// independent of one another.
var subcommands []func() *cobra.Command

// errSilent carries an exit status whose message was already printed.
var errSilent = errors.New("")

// exitError carries a specific exit status to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	root := newRootCmd()
	for _, sub := range subcommands {
		root.AddCommand(sub())
	}
	if err := root.Execute(); err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintf(os.Stderr, "sendtrace: %v\n", err)
		}
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}
