package main

import (
	"fmt"
	"io"

	"github.com/sendtrace/sendtrace/internal/flight"
	"github.com/sendtrace/sendtrace/internal/format"
)

// recorder makes serve's flight recorder, whose notices go to stderr.
// They name the directory of --flight-dir and its files, and what the
// file system said of them, so each goes through format.Printable.
func (f *flightFlags) recorder(stderr io.Writer) (*flight.Recorder, error) {
	return flight.NewRecorder(flight.Config{Dir: f.dir, MaxSize: f.size, MaxAge: f.maxAge, MinFree: uint64(f.free),
		Log: func(msg string) { fmt.Fprintf(stderr, "sendtrace: %s\n", format.Printable(msg)) }})
}
