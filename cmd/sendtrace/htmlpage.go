package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/htmlreport"
	"github.com/sendtrace/sendtrace/internal/outfile"
	"github.com/sendtrace/sendtrace/internal/report"
)

// htmlFlags are report's and diff's --html, --force and (report only)
// --html-conns.
type htmlFlags struct {
	path  string
	force bool
	conns int
}

func (h *htmlFlags) register(fl *pflag.FlagSet, drawsConns bool) {
	fl.StringVar(&h.path, "html", "", "write one self-contained HTML page to this file instead of text")
	fl.BoolVar(&h.force, "force", false, "with --html, overwrite the file if it exists")
	if drawsConns {
		fl.IntVar(&h.conns, "html-conns", htmlreport.DefaultConns, "with --html, how many failed connections to draw; the others are listed")
	}
}

// refuse checks the page's file and the flags before a recording is read:
// a large recording takes seconds to load. The page is never written over
// one of the recordings it is made from, --force or not.
func (h *htmlFlags) refuse(drawsConns bool, recordings ...string) error {
	if drawsConns && h.conns < 1 {
		return fmt.Errorf("invalid --html-conns %d: give the number of failed connections to draw, 1 or more", h.conns)
	}
	return outfile.Check(h.path, h.force, recordings...)
}

func (h *htmlFlags) writeReport(out io.Writer, files *recordingFiles, recording string, top int, bucket time.Duration) error {
	if err := h.refuse(true, recording); err != nil {
		return err
	}
	col := htmlreport.NewCollector(h.conns)
	rec, err := loadReport(files, recording, report.Options{}, col)
	if err != nil {
		return err
	}
	o := htmlreport.Options{Conns: h.conns, Top: top, Bucket: bucket}
	if err := htmlreport.WriteFile(h.path, h.force, func(w io.Writer) error { return htmlreport.WriteReport(w, rec, col, o) }); err != nil {
		return err
	}
	return h.wrote(out)
}

// writeBothEnds joins recordings made at different ends and writes the
// page that draws both ends of each failed connection.
func (h *htmlFlags) writeBothEnds(out io.Writer, files *recordingFiles) error {
	paths := files.paths
	if err := h.refuse(true, paths...); err != nil {
		return err
	}
	r, loaded, err := loadBothEnds(files)
	if err != nil {
		return err
	}
	o := htmlreport.Options{Conns: h.conns}
	if err := htmlreport.WriteFile(h.path, h.force, func(w io.Writer) error { return htmlreport.WriteBothEnds(w, r, loaded, o) }); err != nil {
		return err
	}
	return h.wrote(out)
}

func (h *htmlFlags) writeDiff(out io.Writer, before, after string) error {
	if err := h.refuse(false, before, after); err != nil {
		return err
	}
	a, err := report.Load(before, report.Options{Diagnose: diagnose.DefaultConfig()})
	if err != nil {
		return err
	}
	b, err := report.Load(after, report.Options{Diagnose: diagnose.DefaultConfig()})
	if err != nil {
		return err
	}
	if err := htmlreport.WriteFile(h.path, h.force, func(w io.Writer) error { return htmlreport.WriteDiff(w, a, b) }); err != nil {
		return err
	}
	return h.wrote(out)
}

func (h *htmlFlags) wrote(out io.Writer) error {
	st, err := os.Stat(h.path)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "wrote %s (%d bytes)\n", format.Printable(h.path), st.Size())
	return err
}
