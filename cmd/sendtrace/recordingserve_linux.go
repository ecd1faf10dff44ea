//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/flight"
	"github.com/sendtrace/sendtrace/internal/format"
)

// recordingsOff answers /recording when serve was not started with
// --serve-recordings: it says how to turn it on.
func recordingsOff(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set(agentHeader, version)
	httpLine(w, http.StatusNotFound, "/recording is off: start serve with --flight-dir DIR --serve-recordings to serve windows of its flight recorder (they name this host's connections: serve them behind --web.config.file)")
}

// recordingHandler serves GET /recording?since=...&until=...&FILTER=...:
// one zstd recording of that window of the flight recorder in dir, in
// the format of sendtrace record, streamed as it is read.
func recordingHandler(dir string, stderr io.Writer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(agentHeader, version)
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			httpLine(w, http.StatusMethodNotAllowed, "/recording only reads: GET /recording?since=15m")
			return
		}
		since, until, filter, err := parseWindowRequest(r)
		if err != nil {
			httpLine(w, http.StatusBadRequest, err.Error())
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/zstd")
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="sendtrace-%s.jsonl.zst"`, since.UTC().Format("20060102T150405Z")))
		h.Set("Trailer", agentErrorTrailer)
		sw := &startedWriter{w: w}
		err = flight.Window(dir, since, until, filter, sw)
		window := since.UTC().Format(time.RFC3339) + " to " + until.UTC().Format(time.RFC3339)
		switch {
		case err == nil:
			fmt.Fprintf(stderr, "sendtrace: served the recording of %s (%d bytes) to %s\n", window, sw.n, format.Printable(r.RemoteAddr))
		case sw.n > 0:
			// The status went out with the stream's first bytes: the
			// trailer says the recording is not whole.
			w.Header().Set(agentErrorTrailer, oneLine(err).Error())
			fmt.Fprintf(stderr, "sendtrace: the recording of %s to %s stopped after %d bytes: %s\n", window, format.Printable(r.RemoteAddr), sw.n, format.Printable(oneLine(err).Error()))
		default:
			h.Del("Content-Type")
			h.Del("Content-Disposition")
			h.Del("Trailer")
			status, msg := windowError(err, window)
			httpLine(w, status, msg)
		}
	}
}

// parseWindowRequest reads the window and the filter of a request as
// report --flight reads its flags.
func parseWindowRequest(r *http.Request) (since, until time.Time, filter func(*events.Event) bool, err error) {
	wf, err := windowFromQuery(r.URL.Query())
	if err != nil {
		return
	}
	if since, until, err = wf.window(time.Now()); err != nil {
		return
	}
	f, err := wf.filter()
	if err != nil {
		return
	}
	return since, until, f.Func(), nil
}

// windowError is the status and line for a window the recorder cannot
// give.
func windowError(err error, window string) (int, string) {
	var before *flight.BeforeHistoryError
	switch {
	case errors.As(err, &before):
		return http.StatusNotFound, fmt.Sprintf("the window %s starts before the flight recorder's history: %v: give a later since", window, err)
	case errors.Is(err, flight.ErrNoData):
		return http.StatusNotFound, fmt.Sprintf("the flight recorder has nothing from %s: give a window it was recording", window)
	}
	return http.StatusInternalServerError, "read the flight recorder: " + oneLine(err).Error()
}

// httpLine answers with one line of text.
func httpLine(w http.ResponseWriter, status int, line string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintln(w, oneLine(errors.New(line)).Error())
}

// startedWriter counts what went out, which says whether the status has.
type startedWriter struct {
	w http.ResponseWriter
	n int64
}

func (s *startedWriter) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	s.n += int64(n)
	return n, err
}
