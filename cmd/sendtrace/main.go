// Command sendtrace shows why sends are failing: which process, which
// socket, which errno, which destination, and what the kernel saw before.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sendtrace/sendtrace/internal/format"
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
			printError(os.Stderr, err)
		}
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// printError writes err as "sendtrace: " lines, one for each error that
// errors.Join put together, each through format.Printable: errors name
// files, the values of flags, and what a recording or the kernel said.
func printError(w io.Writer, err error) {
	for _, line := range errorLines(err) {
		fmt.Fprintf(w, "sendtrace: %s\n", format.Printable(line))
	}
}

// errorLines splits an error that errors.Join made, and only such a one:
// its newlines are the joins', where any other error's are its data's.
func errorLines(err error) []string {
	if ee, ok := err.(*exitError); ok {
		err = ee.err
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []string{err.Error()}
	}
	errs := j.Unwrap()
	texts := make([]string, len(errs))
	for i, e := range errs {
		texts[i] = e.Error()
	}
	if strings.Join(texts, "\n") != err.Error() {
		return []string{err.Error()}
	}
	var lines []string
	for _, e := range errs {
		lines = append(lines, errorLines(e)...)
	}
	return lines
}
