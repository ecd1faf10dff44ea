package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// recordingArgs checks that a command got exactly the recordings it names
// (e.g. "BEFORE", "AFTER") and that each is a file, so that a wrong
// argument gets one line saying what to give, not a reader's error.
func recordingArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			if len(names) == 1 {
				return fmt.Errorf("%s needs one recording, got %d arguments: give the file that sendtrace record -o FILE wrote (sendtrace %s incident.jsonl.zst)",
					cmd.Name(), len(args), cmd.Name())
			}
			return fmt.Errorf("%s needs %d recordings, got %d arguments: give %s, files that sendtrace record -o FILE wrote (sendtrace %s)",
				cmd.Name(), len(names), len(args), strings.Join(names, " and "), cmd.Use)
		}
		for _, a := range args {
			if err := checkRecordingFile(a); err != nil {
				return err
			}
		}
		return nil
	}
}

// checkRecordingFile says in one line why a is not a file to read.
func checkRecordingFile(a string) error {
	st, err := os.Stat(a)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v: give a recording file that sendtrace record -o FILE wrote", a, unwrapPath(err))
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory: give a recording file that sendtrace record -o FILE wrote", a)
	}
	return nil
}

// unwrapPath drops the "stat PATH:" prefix that the message already gives.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
