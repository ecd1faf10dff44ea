package main

import (
	"bufio"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/sendtrace/sendtrace/internal/join"
)

// reportArgs takes one recording, or several from different hosts to
// join.
func reportArgs(cmd *cobra.Command, args []string) error {
	names := []string{"FILE"}
	for len(names) < len(args) {
		names = append(names, "FILE")
	}
	return recordingArgs(names...)(cmd, args)
}

// reportBothEnds joins the connections of recordings made at different
// ends and writes the "Both ends" section.
func reportBothEnds(w io.Writer, paths []string, output string) error {
	recs, err := join.Load(paths)
	if err != nil {
		return err
	}
	r := join.Join(recs)
	bw := bufio.NewWriter(w)
	if output == "json" {
		err = join.WriteJSON(bw, r)
	} else {
		err = join.WriteText(bw, r)
	}
	return errors.Join(err, bw.Flush())
}
