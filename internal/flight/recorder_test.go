package flight

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/host"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
	tu "github.com/sendtrace/sendtrace/internal/testutil"
)

func testDesc() *session.Description {
	now := time.Now().UTC()
	return &session.Description{SendtraceVersion: "test", Hostname: "node-a", BootTime: host.BootWall(),
		StartTime: now, StartMonoNS: host.MonoNow(), Hooks: session.Plan{},
		Sysctls: map[string]string{"net.ipv4.tcp_retries2": "15"}}
}

// sendError is a failed send as the tracer delivers it; n varies the
// fields so that the segments do not compress to nothing.
func sendError(n int) events.Event {
	return events.Event{Time: time.Now(), Mono: host.MonoNow(), Kind: events.KindSendError, PID: uint32(1000 + n%50),
		Comm: "client", Cookie: rand.Uint64(), Family: 2, Protocol: 6, Errno: 111, Bytes: uint32(n % 1500),
		Src: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), uint16(rand.IntN(60000))),
		Dst: netip.AddrPortFrom(netip.MustParseAddr("198.18.1.1"), 8080), Seq: rand.Uint32(), SndUna: rand.Uint32(), Syscall: "write"}
}

// countEvents reads a recording to its end.
func countEvents(t *testing.T, rd *record.Reader) uint64 {
	t.Helper()
	var e events.Event
	for {
		ok, err := rd.Next(&e)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return rd.EventsRead
		}
	}
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

func gauge(t *testing.T, r *Recorder, name string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(r)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				ok := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						ok = true
					}
				}
				if !ok {
					continue next
				}
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// Under a size bound far smaller than the events, the directory never
// grows past it, the oldest segments go first, and what is left reads
// back as one window with every event the recorder wrote into it.
func TestRotationStaysUnderTheBound(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flight")
	const maxSize = 1 << 20
	r, err := NewRecorder(Config{Dir: dir, MaxSize: maxSize, MaxAge: time.Hour, freeBytes: func(string) (uint64, error) { return 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	begun := time.Now()
	if err := r.Begin(testDesc()); err != nil {
		t.Fatal(err)
	}
	// A watcher samples the directory's size all along.
	var most atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if n := dirBytes(t, dir); n > most.Load() {
				most.Store(n)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	var firstSeg string
	const total = 60000
	for i := range total {
		e := sendError(i)
		r.Event(&e)
		// At the writer's pace: this test is about the bound, not
		// the queue.
		for len(r.q) > QueueLen/2 {
			time.Sleep(time.Millisecond)
		}
		if firstSeg == "" {
			if segs, _ := listSegments(dir); len(segs) > 0 {
				firstSeg = segs[0].path
			}
		}
	}
	if err := r.End(&session.End{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if n := dirBytes(t, dir); n > most.Load() {
		most.Store(n)
	}
	if most.Load() > maxSize {
		t.Errorf("the directory reached %d bytes, over the bound of %d", most.Load(), maxSize)
	}
	written, dropped := r.written.Load(), r.queueDropped.Load()
	if written+dropped != total {
		t.Fatalf("written %d + dropped %d != %d events given", written, dropped, total)
	}
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if firstSeg == "" || len(segs) < 2 {
		t.Fatalf("segments: first %q, now %d", firstSeg, len(segs))
	}
	if _, err := os.Stat(firstSeg); !os.IsNotExist(err) {
		t.Errorf("the first segment %s is still there after %d bytes of events: the oldest must go first", firstSeg, written*100)
	}
	// What is left is the newest stretch: contiguous segments, each a
	// complete recording whose footer counts its events.
	var inFiles uint64
	for _, s := range segs {
		rd, err := record.Open(s.path)
		if err != nil {
			t.Fatal(err)
		}
		n := countEvents(t, rd)
		if rd.Footer == nil {
			t.Fatalf("%s has no footer after a clean end", s.path)
		}
		if rd.Footer.Events != n {
			t.Errorf("%s: footer says %d events, file has %d", s.path, rd.Footer.Events, n)
		}
		if rd.Header.Sysctls["net.ipv4.tcp_retries2"] != "15" {
			t.Errorf("%s: header lost the session's sysctls: %v", s.path, rd.Header.Sysctls)
		}
		rd.Close()
		inFiles += n
	}
	// What rotation deleted is out of the history: it starts where the
	// last deleted segment ended, the next one's start at the latest.
	if hist := historyStart(dir, segs); !hist.After(begun) || hist.After(segs[0].start) {
		t.Errorf("after rotation the history starts at %v: want after the start of watching (%v), by the first segment's start (%v)", hist, begun, segs[0].start)
	}
	var buf bytes.Buffer
	if err := Window(dir, segs[0].start, time.Time{}, nil, &buf); err != nil {
		t.Fatal(err)
	}
	rd, err := record.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got := countEvents(t, rd)
	if got != inFiles || rd.Footer == nil || rd.Footer.Events != got {
		t.Errorf("window: %d events (footer %+v), the segments hold %d", got, rd.Footer != nil, inFiles)
	}
}

// recordOne runs a session of one event with the recorder in dir.
func recordOne(t *testing.T, dir string) {
	t.Helper()
	r, err := NewRecorder(Config{Dir: dir, MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	r.Begin(testDesc())
	e := sendError(1)
	r.Event(&e)
	r.End(&session.End{Time: time.Now()})
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flight")
	recordOne(t, dir)
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %04o, want 0700", st.Mode().Perm())
	}
	segs, _ := listSegments(dir)
	if len(segs) != 1 {
		t.Fatalf("%d segments, want 1", len(segs))
	}
	if st, _ := os.Stat(segs[0].path); st.Mode().Perm() != 0o600 {
		t.Errorf("segment mode %04o, want 0600", st.Mode().Perm())
	}

	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	_, err = NewRecorder(Config{Dir: open})
	if err == nil || !strings.Contains(err.Error(), "can be written by other users") || strings.Contains(err.Error(), "\n") {
		t.Errorf("a directory others can write: got %v, want one line refusing it", err)
	}
}

// Below the free-space floor the recorder stops writing, says so once in
// its log and in sendtrace_flight_disk_short, counts what it drops, and
// resumes when space returns.
func TestDiskShort(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flight")
	var free atomic.Uint64
	free.Store(1 << 40)
	var logMu sync.Mutex
	var logged []string
	r, err := NewRecorder(Config{Dir: dir, MaxSize: 4 << 20, MinFree: 100 << 20,
		freeBytes: func(string) (uint64, error) { return free.Load(), nil },
		Log:       func(m string) { logMu.Lock(); logged = append(logged, m); logMu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	r.Begin(testDesc())
	e := sendError(0)
	r.Event(&e)
	ctx := tu.Context(t, time.Minute)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		if err := tu.Poll(ctx, 10*time.Millisecond, func() (bool, error) { return cond(), nil }); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	waitFor("the first event written", func() bool { return r.written.Load() == 1 })
	free.Store(10 << 20)
	waitFor("disk short", func() bool { return gauge(t, r, "sendtrace_flight_disk_short") == 1 })
	for i := range 5 {
		e := sendError(i)
		r.Event(&e)
	}
	waitFor("five drops", func() bool { return r.diskDropped.Load() == 5 })
	if got := gauge(t, r, "sendtrace_flight_dropped_events_total", "cause", "disk_short"); got != 5 {
		t.Errorf("dropped{cause=disk_short} = %v, want 5", got)
	}
	free.Store(1 << 40)
	waitFor("writing again", func() bool { return gauge(t, r, "sendtrace_flight_disk_short") == 0 })
	e = sendError(9)
	r.Event(&e)
	r.End(&session.End{Time: time.Now()})
	if r.written.Load() != 2 {
		t.Errorf("written %d, want 2 (one before, one after the short)", r.written.Load())
	}
	logMu.Lock()
	defer logMu.Unlock()
	if len(logged) != 2 || !strings.Contains(logged[0], "below the floor of 100 MiB: stopped writing") || !strings.Contains(logged[1], "writing again") {
		t.Errorf("log lines: %q", logged)
	}
}

func TestWindowBadInput(t *testing.T) {
	var buf bytes.Buffer
	missing := filepath.Join(t.TempDir(), "nope")
	if err := Window(missing, time.Now().Add(-time.Minute), time.Time{}, nil, &buf); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing directory: %v", err)
	}
	empty := t.TempDir()
	if err := Window(empty, time.Now().Add(-time.Minute), time.Time{}, nil, &buf); !errors.Is(err, ErrNoData) {
		t.Errorf("empty directory: %v, want ErrNoData", err)
	}
	dir := filepath.Join(t.TempDir(), "flight")
	recordOne(t, dir)
	segs, _ := listSegments(dir)
	hist := historyStart(dir, segs)
	if hist.IsZero() || hist.After(segs[0].start) {
		t.Fatalf("history starts at %v, the first segment at %v", hist, segs[0].start)
	}
	var bh *BeforeHistoryError
	if err := Window(dir, hist.Add(-time.Hour), time.Time{}, nil, &buf); !errors.As(err, &bh) || !bh.Start.Equal(hist) {
		t.Errorf("since before the history: %v", err)
	} else if want := "history starts at " + hist.Format(time.RFC3339Nano); err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if err := Window(dir, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour), nil, &buf); !errors.Is(err, ErrNoData) {
		t.Errorf("a window after the recording: %v, want ErrNoData", err)
	}
	since, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(bh.Error(), "history starts at "))
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := Window(dir, since, time.Time{}, nil, &buf); err != nil {
		t.Errorf("--since the time the error said: %v", err)
	}
}

// TestHistoryStartsWhenWatchingBegins: a quiet stretch writes no segment,
// yet the recorder watched it; a window from the start of watching is
// the recorder's to answer, not before its history.
func TestHistoryStartsWhenWatchingBegins(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flight")
	r, err := NewRecorder(Config{Dir: dir, MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Begin(testDesc()); err != nil {
		t.Fatal(err)
	}
	watching := time.Now()
	time.Sleep(20 * time.Millisecond) // nothing fails meanwhile
	e := sendError(1)
	r.Event(&e)
	if err := r.End(&session.End{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	segs, _ := listSegments(dir)
	if len(segs) != 1 || !segs[0].start.After(watching) {
		t.Fatalf("segments %+v: want one, opened for the event after watching began at %v", segs, watching)
	}
	var buf bytes.Buffer
	if err := Window(dir, watching, time.Time{}, nil, &buf); err != nil {
		t.Fatalf("a window from the start of watching: %v", err)
	}
	rd, err := record.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, rd); n != 1 {
		t.Errorf("the window holds %d events, want the 1 failure", n)
	}
}

// TestSegmentWrittenWithinATick: a file's time is the kernel's last tick,
// so a segment written within one can carry a time before its own start;
// a window from that start still finds it.
func TestSegmentWrittenWithinATick(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flight")
	recordOne(t, dir)
	segs, _ := listSegments(dir)
	if len(segs) != 1 {
		t.Fatalf("%d segments, want 1", len(segs))
	}
	early := segs[0].start.Add(-5 * time.Millisecond)
	if err := os.Chtimes(segs[0].path, early, early); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Window(dir, segs[0].start, time.Time{}, nil, &buf); err != nil {
		t.Fatalf("a window from the segment's start, its file time 5ms before: %v", err)
	}
}
