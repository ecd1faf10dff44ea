package fleet_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// segmentEvents counts the events in the flight directory's segments, as
// a report would read them now (the open one up to its last flushed
// record), and their bytes.
func segmentEvents(t *testing.T, dir string) (n uint64, bytes int64, segs int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "flight-*.jsonl.zst"))
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			continue
		}
		rd, err := record.Open(f)
		if err != nil {
			continue // its header is not flushed yet
		}
		n += readToEnd(rd)
		rd.Close()
		bytes += st.Size()
		segs++
	}
	return n, bytes, segs
}

// readToEnd reads a recording up to its last complete record, as
// report does, and returns the events read.
func readToEnd(rd *record.Reader) uint64 {
	var e events.Event
	for {
		if ok, err := rd.Next(&e); !ok || err != nil {
			return rd.EventsRead
		}
	}
}

func runSendtrace(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, sendtraceBin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// TestFlightKill9 has serve's flight recorder keep the real failed sends
// of a process, kills serve with SIGKILL, and reads the history back
// with report --flight: every failed send the process saw is there,
// under its pid and errno, and the report says the segment was cut
// short. record --from-flight hands the same window on as one file.
func TestFlightKill9(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	dir := filepath.Join(t.TempDir(), "flight")
	const sends = 500
	a := lab.client(t, ctx, sends)
	srv := startServe(t, ctx, "--events=false", "--dst="+lab.Link.V4Net.String(), "--flight-dir", dir)
	if err := a.Release("start"); err != nil {
		t.Fatal(err)
	}
	saw := failedSends(t, ctx, a)
	if len(saw) != sends {
		t.Fatalf("lab: the actor saw %d failed sends, want %d", len(saw), sends)
	}
	// The recorder flushes every 500 ms: wait until the open segment
	// holds every event, as a reader sees the file.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var inFiles uint64
	var size int64
	if err := testutil.Poll(wctx, 100*time.Millisecond, func() (bool, error) {
		inFiles, size, _ = segmentEvents(t, dir)
		return inFiles >= sends, nil
	}); err != nil {
		t.Fatalf("the flight segments hold %d events, want %d: %v\n%s", inFiles, sends, err, srv.Stderr())
	}
	written := metricValue(t, ctx, srv.addr, regexp.MustCompile(`(?m)^sendtrace_flight_events_written_total (\S+)$`))
	if err := syscall.Kill(srv.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events in %d bytes of segment (%.0f bytes an event); sendtrace_flight_events_written_total %s", inFiles, size, float64(size)/float64(inFiles), written)

	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("flight directory: %v %v, want mode 0700", st.Mode(), err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, st.Mode())
		}
	}

	// The history is younger than 10 minutes: the answer says where it
	// starts, and that time is the --since to give.
	_, stderr, err := runSendtrace(t, ctx, "report", "--flight", dir, "--since", "10m", "-o", "json")
	m := regexp.MustCompile(`history starts at (\S+); give a later --since`).FindStringSubmatch(stderr)
	if err == nil || m == nil {
		t.Fatalf("report --flight --since 10m: %v %q, want the start of the history", err, stderr)
	}
	since := m[1]
	out, stderr, err := runSendtrace(t, ctx, "report", "--flight", dir, "--since", since, "-o", "json")
	if err != nil {
		t.Fatalf("report --flight: %v\n%s", err, stderr)
	}
	var rep struct {
		Events     uint64                       `json:"events"`
		CountsFrom string                       `json:"counts_from"`
		ByErrno    map[string]map[string]uint64 `json:"by_errno"`
		Problems   []string                     `json:"problems"`
		Processes  []struct {
			PID        uint32 `json:"pid"`
			SendErrors uint64 `json:"send_errors"`
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report -o json: %v\n%s", err, out)
	}
	if got := rep.ByErrno["send_error"]["EMSGSIZE"]; got != sends || rep.Events != inFiles {
		t.Errorf("report --flight: %d EMSGSIZE send errors in %d events, want the %d the process saw in the %d events of the segments", got, rep.Events, sends, inFiles)
	}
	var forPID uint64
	for _, p := range rep.Processes {
		if p.PID == uint32(a.PID()) {
			forPID += p.SendErrors
		}
	}
	if forPID != sends {
		t.Errorf("report --flight: pid %d has %d send errors, want %d (%+v)", a.PID(), forPID, sends, rep.Processes)
	}
	if rep.CountsFrom != "events" || !strings.Contains(strings.Join(rep.Problems, "\n"), "cut short when serve was killed") {
		t.Errorf("report --flight after kill -9: counts from %q, problems %q: want the events, and the cut segment said", rep.CountsFrom, rep.Problems)
	}

	// The same window handed on as one file reads the same.
	file := filepath.Join(t.TempDir(), "incident.jsonl.zst")
	if _, stderr, err := runSendtrace(t, ctx, "record", "--from-flight", dir, "--since", since, "-o", file); err != nil {
		t.Fatalf("record --from-flight: %v\n%s", err, stderr)
	}
	out2, stderr, err := runSendtrace(t, ctx, "report", "-o", "json", file)
	if err != nil {
		t.Fatalf("report %s: %v\n%s", file, err, stderr)
	}
	if err := json.Unmarshal([]byte(out2), &rep); err != nil || rep.ByErrno["send_error"]["EMSGSIZE"] != sends {
		t.Errorf("report of record --from-flight: %v %v", err, rep.ByErrno)
	}
	if _, stderr, err := runSendtrace(t, ctx, "record", "--from-flight", dir, "--since", since, "-o", file); err == nil || !strings.Contains(stderr, "exists") {
		t.Errorf("record --from-flight over an existing file: %v %q, want a refusal", err, stderr)
	}

	// A second serve keeps the first one's history, and is killed while
	// a process is still failing sends: the window reads every record
	// that reached the file, the first session's and the second's.
	b := lab.client(t, ctx, 200000)
	srv2 := startServe(t, ctx, "--events=false", "--dst="+lab.Link.V4Net.String(), "--flight-dir", dir)
	if err := b.Release("start"); err != nil {
		t.Fatal(err)
	}
	written2 := regexp.MustCompile(`(?m)^sendtrace_flight_events_written_total (\S+)$`)
	if err := testutil.Poll(wctx, 50*time.Millisecond, func() (bool, error) {
		n, _ := strconv.Atoi(metricValue(t, ctx, srv2.addr, written2))
		return n >= 2000, nil
	}); err != nil {
		t.Fatalf("the second serve wrote no flight events: %v", err)
	}
	if err := syscall.Kill(srv2.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.Wait(ctx)
	inFiles, _, segs := segmentEvents(t, dir)
	out, stderr, err = runSendtrace(t, ctx, "report", "--flight", dir, "--since", since, "-o", "json")
	if err != nil {
		t.Fatalf("report --flight after a kill mid-stream: %v\n%s", err, stderr)
	}
	rep.ByErrno = nil
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if got := rep.ByErrno["send_error"]["EMSGSIZE"]; rep.Events != inFiles || got != inFiles || got <= sends {
		t.Errorf("report --flight after a kill mid-stream: %d events, %d EMSGSIZE; the %d segments hold %d complete records", rep.Events, got, segs, inFiles)
	}
	t.Logf("killed mid-stream: the window reads %d events from %d segments of two sessions", rep.Events, segs)
}

// TestFlightBadInput: each mistake gets one line and a non-zero exit.
func TestFlightBadInput(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	dir := filepath.Join(t.TempDir(), "flight")
	a := lab.client(t, ctx, 5)
	srv := startServe(t, ctx, "--events=false", "--dst="+lab.Link.V4Net.String(), "--flight-dir", dir)
	if err := a.Release("start"); err != nil {
		t.Fatal(err)
	}
	failedSends(t, ctx, a)
	srv.Stop(t, tracerStop)
	empty := t.TempDir()
	// A recording file that exists, so that --since without --flight is
	// what report objects to.
	file := filepath.Join(t.TempDir(), "x.jsonl.zst")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "--flight", empty, "--since", "5m"}, "nothing was recorded in"},
		{[]string{"report", "--flight", dir, "--since", "3h"}, "is before the flight recording in " + dir + ": history starts at "},
		{[]string{"report", "--flight", filepath.Join(empty, "nope"), "--since", "5m"}, "does not exist"},
		{[]string{"report", "--flight", dir, "--since", "yesterday"}, `invalid --since "yesterday"`},
		{[]string{"report", "--flight", dir}, "missing --since"},
		{[]string{"report", "--since", "5m", file}, "give --flight DIR"},
		{[]string{"record", "--from-flight", dir, "--since", "5m", "-o", filepath.Join(empty, "w.jsonl")}, "give a name ending in .zst"},
	} {
		_, stderr, err := runSendtrace(t, ctx, c.args...)
		msg := strings.TrimSpace(stderr)
		if err == nil || !strings.Contains(msg, c.want) || strings.Count(msg, "\n") > 0 {
			t.Errorf("sendtrace %s: exit %v, stderr %q: want one line with %q", strings.Join(c.args, " "), err, msg, c.want)
		} else {
			t.Logf("sendtrace %s: %s", strings.Join(c.args, " "), msg)
		}
	}
}

// TestFlightSegmentTotals fails 60,000 real sends under a flight bound
// small enough that they span several segments, stops serve, and checks
// that the segments' footers add up to what the process saw (each counts
// the kernel's totals over its own span), that each footer counts the
// events of its file, and that a window of the whole history is all
// whole segments, with the kernel's totals.
func TestFlightSegmentTotals(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	dir := filepath.Join(t.TempDir(), "flight")
	const sends = 60000
	a := lab.client(t, ctx, sends)
	srv := startServe(t, ctx, "--events=false", "--dst="+lab.Link.V4Net.String(), "--flight-dir", dir, "--flight-max-size", "2MiB")
	if err := a.Release("start"); err != nil {
		t.Fatal(err)
	}
	if got := len(failedSends(t, ctx, a)); got != sends {
		t.Fatalf("lab: %d failed sends, want %d", got, sends)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// A burst this fast may fill the ring buffer or the recorder's
	// queue: every event is written, or counted as lost on the way.
	num := func(re string) uint64 {
		n, _ := strconv.ParseUint(metricValue(t, ctx, srv.addr, regexp.MustCompile(`(?m)^`+re+` (\S+)$`)), 10, 64)
		return n
	}
	var written, queued, ring uint64
	if err := testutil.Poll(wctx, 100*time.Millisecond, func() (bool, error) {
		written, queued = num(`sendtrace_flight_events_written_total`), num(`sendtrace_flight_dropped_events_total\{cause="queue_full"\}`)
		ring = num(`sendtrace_events_lost_total\{cause="ring_full"\}`)
		return written+queued+ring == sends, nil
	}); err != nil {
		t.Fatalf("flight events written %d, dropped from the queue %d, lost in the ring %d: want %d in all", written, queued, ring, sends)
	}
	t.Logf("flight events written %d, dropped from the queue %d, lost in the ring %d", written, queued, ring)
	srv.Stop(t, tracerStop)

	files, _ := filepath.Glob(filepath.Join(dir, "flight-*.jsonl.zst"))
	var sum, inFiles, lostUser, lostKernel uint64
	for _, f := range files {
		rd, err := record.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		n := readToEnd(rd)
		if rd.Footer == nil {
			t.Fatalf("%s: no footer after a clean stop", f)
		}
		if rd.Footer.Events != n {
			t.Errorf("%s: footer says %d events, the file has %d", f, rd.Footer.Events, n)
		}
		k := rd.Footer.ByErrno["send_error"]["EMSGSIZE"]
		t.Logf("%s: %d events, the kernel counted %d EMSGSIZE", filepath.Base(f), n, k)
		sum += k
		inFiles += n
		lostUser += rd.Footer.Lost.User
		lostKernel += rd.Footer.Lost.Kernel
		rd.Close()
	}
	if len(files) < 2 || sum != sends || inFiles != written {
		t.Errorf("%d segments: their footers count %d EMSGSIZE and hold %d events; the process saw %d, the recorder wrote %d", len(files), sum, inFiles, sends, written)
	}
	if lostUser != queued || lostKernel != ring {
		t.Errorf("the footers count %d events dropped from the queue and %d lost in the ring; the metrics %d and %d", lostUser, lostKernel, queued, ring)
	}
	out := filepath.Join(t.TempDir(), "all.jsonl.zst")
	segs, _ := filepath.Glob(filepath.Join(dir, "flight-*"))
	start := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(segs[0]), "flight-"), ".jsonl.zst")
	since, err := time.Parse("20060102T150405.000000000Z", start)
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runSendtrace(t, ctx, "record", "--from-flight", dir, "--since", since.Format(time.RFC3339Nano), "-o", out); err != nil {
		t.Fatalf("record --from-flight: %v\n%s", err, stderr)
	}
	rd, err := record.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	readToEnd(rd)
	f := rd.Footer
	if f == nil || f.Window == nil || f.Window.KernelSegments != len(files) || f.Window.EventsCounted != 0 || f.ByErrno["send_error"]["EMSGSIZE"] != sends || rd.EventsRead != written {
		t.Errorf("the window of the whole history: %d events, footer %+v", rd.EventsRead, f)
	}
}
