//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/flight"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// flightHistory has the flight recorder keep, in dir, one failed send of
// pid 41 and one of pid 42, after a first event that opens its history.
// It returns a time within the history, before the two sends.
func flightHistory(t *testing.T, dir string) time.Time {
	t.Helper()
	rec, err := flight.NewRecorder(flight.Config{Dir: dir, MinFree: 1})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := rec.Begin(&session.Description{SendtraceVersion: "test", Hostname: "node-a", BootTime: now.Add(-time.Hour), StartTime: now}); err != nil {
		t.Fatal(err)
	}
	send := func(pid uint32) {
		e := &events.Event{Time: time.Now(), Kind: events.KindSendError, PID: pid, Comm: "app", Protocol: events.ProtoTCP,
			Dst: netip.MustParseAddrPort("198.18.0.2:80"), Errno: 32, Bytes: 100, Cookie: uint64(pid)}
		if err := rec.Event(e); err != nil {
			t.Fatal(err)
		}
	}
	send(40)
	// The history starts with the segment the first event opens.
	ctx := testutil.Context(t, 30*time.Second)
	if err := testutil.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		m, err := filepath.Glob(filepath.Join(dir, "flight-*"))
		return len(m) > 0, err
	}); err != nil {
		t.Fatal(err)
	}
	within := time.Now()
	// A segment's end is its file's mtime, kept by the kernel's coarse
	// clock (a tick behind): the sends come well after within.
	time.Sleep(50 * time.Millisecond)
	send(41)
	send(42)
	if err := rec.End(&session.End{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return within
}

// TestRecordingEndpoint: GET /recording streams the window, filtered as
// report --flight filters it, and report URL reads it as it reads a file,
// naming it by its URL; bad parameters are 400, a window the recorder
// does not hold is 404, each with one line, and every answer says it is
// sendtrace's.
func TestRecordingEndpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flight")
	within := flightHistory(t, dir)
	var log bytes.Buffer
	srv := httptest.NewServer(recordingHandler(dir, &log))
	defer srv.Close()
	empty := httptest.NewServer(recordingHandler(t.TempDir(), io.Discard))
	defer empty.Close()
	off := httptest.NewServer(http.HandlerFunc(recordingsOff))
	defer off.Close()
	since := within.UTC().Format(time.RFC3339Nano)

	resp, body := get(t, srv.URL+"/recording?since="+since+"&pid=42")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/zstd" || resp.Header.Get(agentHeader) == "" {
		t.Fatalf("%s %v %s: want 200, a zstd recording, and the agent header", resp.Status, resp.Header, body)
	}
	path := filepath.Join(t.TempDir(), "window.jsonl.zst")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	evs, _ := testutil.ReadRecording(t, path)
	if len(evs) != 1 || evs[0].PID != 42 {
		t.Errorf("pid=42: %d events %+v, want the one of pid 42", len(evs), evs)
	}
	if !strings.Contains(log.String(), "sendtrace: served the recording of ") {
		t.Errorf("no log line for the window served: %q", log.String())
	}

	for _, c := range []struct {
		url    string
		status int
		want   string
	}{
		{srv.URL + "/recording?since=lately", http.StatusBadRequest, `invalid --since "lately"`},
		{srv.URL + "/recording?since=1m&pid=x", http.StatusBadRequest, `invalid --pid "x"`},
		{srv.URL + "/recording?since=1m&flight=/", http.StatusBadRequest, `unknown parameter "flight"`},
		{srv.URL + "/recording", http.StatusBadRequest, "missing --since"},
		{srv.URL + "/recording?since=1h", http.StatusNotFound, "starts before the flight recorder's history: history starts at "},
		{empty.URL + "/recording?since=1m", http.StatusNotFound, "the flight recorder has nothing from "},
		{off.URL + "/recording?since=1m", http.StatusNotFound, "/recording is off: start serve with --flight-dir DIR --serve-recordings"},
	} {
		resp, body := get(t, c.url)
		line := string(body)
		if resp.StatusCode != c.status || resp.Header.Get(agentHeader) == "" || !strings.Contains(line, c.want) || strings.Count(line, "\n") != 1 {
			t.Errorf("GET %s: %s %q, want %d and one line containing %q", c.url, resp.Status, line, c.status, c.want)
		}
	}

	var out bytes.Buffer
	err := sendtraceOut(t, &out, "report", srv.URL, "--since", since, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"file": "`+srv.URL+`"`) || !strings.Contains(out.String(), `"EPIPE"`) {
		t.Errorf("report %s: want the window named by its URL, with its failed sends:\n%s", srv.URL, out.String())
	}
	page := filepath.Join(t.TempDir(), "window.html")
	if err := sendtraceOut(t, &out, "report", "--html", page, srv.URL, "--since", since); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(page); err != nil || !strings.Contains(string(b), srv.URL) {
		t.Errorf("report --html %s %s: %v; want a page naming the window by its URL", page, srv.URL, err)
	}
	if err := sendtraceOut(t, &out, "report", empty.URL, "--since", "1m"); err == nil || !strings.Contains(err.Error(), "agent "+empty.URL+": the flight recorder has nothing from ") {
		t.Errorf("report of an empty flight directory: %v", err)
	}
}

func get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}
