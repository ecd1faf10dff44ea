package main

import (
	"fmt"
	"io"

	"github.com/sendtrace/sendtrace/internal/flight"
)

// recorder makes serve's flight recorder, whose notices go to stderr.
func (f *flightFlags) recorder(stderr io.Writer) (*flight.Recorder, error) {
	return flight.NewRecorder(flight.Config{Dir: f.dir, MaxSize: f.size, MaxAge: f.maxAge, MinFree: uint64(f.free),
		Log: func(msg string) { fmt.Fprintf(stderr, "sendtrace: %s\n", msg) }})
}
