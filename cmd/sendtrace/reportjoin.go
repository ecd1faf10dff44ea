package main

import (
	"bufio"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/sendtrace/sendtrace/internal/join"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/report"
)

// reportArgs takes one recording, or several from different hosts to
// join: files, or agents' URLs (checked when their windows are fetched).
func reportArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return recordingArgs("FILE")(cmd, args)
	}
	for _, a := range args {
		if isAgentURL(a) {
			continue
		}
		if err := checkRecordingFile(a); err != nil {
			return err
		}
	}
	return nil
}

// reportBothEnds joins the connections of recordings made at different
// ends and writes the "Both ends" section.
func reportBothEnds(w io.Writer, files *recordingFiles, output string) error {
	recs, err := loadJoin(files)
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

// loadJoin loads the recordings of the ends to join, named as given.
func loadJoin(files *recordingFiles) ([]*join.Recording, error) {
	recs, err := join.Load(files.paths)
	if err != nil {
		return nil, files.rename(err)
	}
	for _, r := range recs {
		r.Path = files.name(r.Path)
	}
	return recs, nil
}

// loadReport loads one recording for a report, named as given.
func loadReport(files *recordingFiles, path string, o report.Options, also ...pipeline.Sink) (*report.Recording, error) {
	o.Name = files.name(path)
	rec, err := report.Load(path, o, also...)
	return rec, files.rename(err)
}
