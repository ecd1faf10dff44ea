package main

import (
	"bufio"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/sendtrace/sendtrace/internal/diagnose"
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
	recs, err := loadJoin(files, join.Replay(diagnose.DefaultConfig()))
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

// loadJoin loads the recordings of the ends to join, named as given,
// each replayed once through replay.
func loadJoin(files *recordingFiles, replay join.Replayer) ([]*join.Recording, error) {
	recs, err := join.Load(files.paths, replay)
	if err != nil {
		return nil, files.rename(err)
	}
	for _, r := range recs {
		r.Path = files.name(r.Path)
	}
	return recs, nil
}

// loadBothEnds loads the recordings of the ends for the both-ends page:
// one replay of each feeds both the join and the recording's own report
// (its header and diagnoses, as its own page has them), so that each is
// read and diagnosed once.
func loadBothEnds(files *recordingFiles) (*join.Result, []*report.Recording, error) {
	loaded := make([]*report.Recording, 0, len(files.paths))
	recs, err := loadJoin(files, func(path string, ends pipeline.Sink) (bool, error) {
		rec, err := loadReport(files, path, report.Options{}, ends)
		if err != nil {
			return false, err
		}
		loaded = append(loaded, rec)
		return rec.Footer != nil, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return join.Join(recs), loaded, nil
}

// loadReport loads one recording for a report, named as given, and
// diagnoses it with the default thresholds.
func loadReport(files *recordingFiles, path string, o report.Options, also ...pipeline.Sink) (*report.Recording, error) {
	o.Name = files.name(path)
	o.Diagnose = diagnose.DefaultConfig()
	rec, err := report.Load(path, o, also...)
	return rec, files.rename(err)
}
