package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// report and diff say what to give when their arguments are wrong: one
// line, no usage dump, and no reader error about a directory.
func TestRecordingArgs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		cmd  *cobra.Command
		args []string
		want string
	}{
		{newReportCmd(), nil, "report needs one recording, got 0 arguments: give the file that sendtrace record -o FILE wrote"},
		{newReportCmd(), []string{dir}, dir + " is a directory: give a recording file"},
		{newReportCmd(), []string{dir + "/none"}, "cannot read " + dir + "/none: no such file or directory: give a recording file"},
		{newDiffCmd(), []string{dir}, "diff needs 2 recordings, got 1 arguments: give BEFORE and AFTER"},
		{newDiffCmd(), []string{dir, dir}, dir + " is a directory: give a recording file"},
	} {
		err := tc.cmd.Args(tc.cmd, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s %v: got %v, want one line containing %q", tc.cmd.Name(), tc.args, err, tc.want)
		}
	}
}
