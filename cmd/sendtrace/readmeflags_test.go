package main

import (
	"os"
	"regexp"
	"testing"

	"github.com/spf13/pflag"
)

// Every flag of every command is named in the README, so a reader of the
// README learns of each one (report --top, record --status-interval,
// check -o ...) without reading --help.
func TestREADMENamesEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	for _, sub := range subcommands {
		root.AddCommand(sub())
	}
	check := func(cmd, name string, f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		named := regexp.MustCompile(`--` + regexp.QuoteMeta(f.Name) + `\b`).Match(readme)
		if !named && f.Shorthand != "" {
			// "check ... [-o text|json]": the shorthand on a line of the
			// command's own.
			named = regexp.MustCompile(`(?m)\b` + regexp.QuoteMeta(name) + `\b[^\n]*[\s\[]-` + regexp.QuoteMeta(f.Shorthand) + `[ =]`).Match(readme)
		}
		if !named {
			t.Errorf("%s --%s is not in the README", cmd, f.Name)
		}
	}
	// --version is added only when the command line is parsed; a bug
	// report needs it, so the README must say it exists.
	root.InitDefaultVersionFlag()
	if root.Flags().Lookup("version") == nil {
		t.Fatal("sendtrace has no --version")
	}
	root.Flags().VisitAll(func(f *pflag.Flag) { check("sendtrace", "sendtrace", f) })
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) { check("sendtrace", "sendtrace", f) })
	for _, c := range root.Commands() {
		c.Flags().VisitAll(func(f *pflag.Flag) { check("sendtrace "+c.Name(), c.Name(), f) })
	}
}
