package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
	sess "github.com/sendtrace/sendtrace/internal/session"
)

// The flight recorder: what keeping it costs serve (a run of the agent
// workload with --flight-dir, beside the DaemonSet's, in agent.go), and
// what reading an hour of it from the agent's URL costs report.

// Targets of the flight recorder.
const (
	flightCPURatioTarget = 1.2       // serve with it, over serve without it
	flightReadRSSTarget  = 200 << 20 // report's peak RSS reading the hour from a URL
)

// agentFlight names the agent run with the flight recorder on.
const agentFlight = "DaemonSet's with `--flight-dir` (the flight recorder on)"

type flightReadResult struct {
	events    int
	span      time.Duration // of the synthesized history
	segments  int
	diskBytes int64
	synth     time.Duration
	wall      time.Duration // report URL --since, from exec to exit
	reportRSS int64         // bytes, the report's peak (ru_maxrss)
	serveRSS  int64         // bytes, serve's VmHWM after it served the window
	reported  uint64        // events the report read
}

// runFlightRead synthesizes an hour of 1,000 failures/s (3.6M events;
// -quick: a minute) as the flight recorder lays it out, serves it with
// serve --serve-recordings and reads it back with report URL.
func (h *harness) runFlightRead() error {
	res := &flightReadResult{span: time.Hour}
	if h.cfg.quick {
		res.span = time.Minute
	}
	res.events = int(res.span.Seconds() * h.cfg.agentRate)
	h.flight = res
	dir := filepath.Join(h.tmp, "flight")
	t0 := time.Now()
	first, err := synthesizeFlight(dir, res)
	if err != nil {
		return err
	}
	res.synth = time.Since(t0)
	h.logf("flightread: %d events in %d segments (%s) written in %s", res.events, res.segments, mib(uint64(res.diskBytes/1024)), res.synth.Round(time.Second))

	addr, err := freeLoopback()
	if err != nil {
		return err
	}
	// --dst keeps this machine's other failures out: serve only serves.
	host := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), rand.IntN(256), 1+rand.IntN(254))
	st, _, err := h.startSendtrace("serve", "--listen", addr, "--dst", host+"/32", "--events=false",
		"--flight-dir", dir, "--flight-max-size", "16GiB", "--flight-max-age", "3h", "--serve-recordings")
	if err != nil {
		return err
	}
	defer st.stop()
	cmd := exec.Command(h.sendtraceBin, "report", "http://"+addr, "--since", first.Format(time.RFC3339Nano), "-o", "json")
	out, err := os.CreateTemp(h.tmp, "flight-report-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, os.Stderr
	t1 := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("report http://%s: %w", addr, err)
	}
	res.wall = time.Since(t1)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.reportRSS = ru.Maxrss * 1024
	}
	res.serveRSS = int64(procStatus(st.cmd.Process.Pid, "VmHWM")) * 1024
	if res.reported, err = reportedEvents(out.Name()); err != nil {
		return err
	}
	h.logf("flightread: report read %d events from the URL in %s, peak RSS %s (serve's %s)",
		res.reported, res.wall.Round(time.Millisecond), mib(uint64(res.reportRSS/1024)), mib(uint64(res.serveRSS/1024)))
	if res.reported != uint64(res.events) {
		return fmt.Errorf("report read %d events of the window, want the %d synthesized", res.reported, res.events)
	}
	return st.stop()
}

// synthesizeFlight writes res.events send failures, evenly over
// res.span ending now, into one-minute segments named and written as
// the flight recorder writes them (flight-START.jsonl.zst, each a
// recording with its header and footer, its mtime its last write). It
// returns the first segment's start.
func synthesizeFlight(dir string, res *flightReadResult) (time.Time, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return time.Time{}, err
	}
	const segSpan = time.Minute
	now := time.Now().UTC()
	first := now.Add(-res.span).Truncate(time.Millisecond)
	boot := first.Add(-time.Hour)
	gap := res.span / time.Duration(res.events)
	e := events.Event{Kind: events.KindSendError, Comm: "app", Protocol: events.ProtoTCP, Family: syscall.AF_INET, OwnerKnown: true,
		Src: netip.MustParseAddrPort("198.18.0.1:40000"), State: 1, Bytes: 100, Errno: int32(syscall.EPIPE),
		Layer: events.LayerBoth, Syscall: "sendto", StackErrno: int32(syscall.EPIPE), SinceSend: time.Millisecond, SinceRecv: time.Second, DataSegsIn: -1}
	i := 0
	for start := first; start.Before(now) && i < res.events; start = start.Add(segSpan) {
		end := start.Add(segSpan)
		if end.After(now) {
			end = now
		}
		h := &record.Header{Description: sess.Description{SendtraceVersion: "bench", Hostname: "bench-node",
			BootTime: boot, StartTime: start, StartMonoNS: uint64(start.Sub(boot))}}
		path := filepath.Join(dir, "flight-"+start.Format("20060102T150405.000000000Z")+".jsonl.zst")
		w, err := record.CreateFile(path, false, h)
		if err != nil {
			return first, err
		}
		n := uint64(0)
		for ; i < res.events; i++ {
			t := first.Add(time.Duration(i) * gap)
			if !t.Before(end) {
				break
			}
			// 1,000 sockets of 10 processes, each failing once a second.
			e.Time, e.Mono = t, uint64(t.Sub(boot))
			e.PID, e.TID = 1000+uint32(i%10), 1000+uint32(i%10)
			e.Cookie = 1 + uint64(i%1000)
			e.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i % 100)}), 443)
			if err := w.WriteEvent(&e); err != nil {
				return first, err
			}
			n++
		}
		fin := &sess.End{Time: end, MonoNS: uint64(end.Sub(boot))}
		if err := w.Close(record.NewFooter(fin, h, n, nil, "events")); err != nil {
			return first, err
		}
		if err := os.Chtimes(path, end, end); err != nil {
			return first, err
		}
		st, err := os.Stat(path)
		if err != nil {
			return first, err
		}
		res.segments++
		res.diskBytes += st.Size()
	}
	return first, nil
}

// reportedEvents is the number of events a report -o json read.
func reportedEvents(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var r struct {
		Events uint64 `json:"events"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("report -o json: %w", err)
	}
	return r.Events, nil
}

func (h *harness) flightSection(p func(string, ...any)) {
	f := h.flight
	p("## 8. Reading the flight recorder from a URL\n\n")
	p("%d send failures (%s a second for %s, from 1,000 sockets of 10 processes) are synthesized in %d one-minute segments (%s on disk, written in %s), named and written as `serve --flight-dir` writes them, with the recorder's own writer (`record.Writer`): recording an hour in real time would take the hour. `sendtrace serve --flight-dir DIR --serve-recordings` serves them; `sendtrace report http://ADDR --since START -o json` fetches the whole window into a temporary file and reports it. Peak RSS is the report's `ru_maxrss` and serve's VmHWM after the window was served.\n\n",
		f.events, rate(h.cfg.agentRate), f.span, f.segments, mib(uint64(f.diskBytes/1024)), f.synth.Round(time.Second))
	p("| events | report, exec to exit | report's peak RSS | serve's peak RSS | events reported |\n|---|---|---|---|---|\n")
	p("| %d | %.1f s | %s | %s | %d |\n\n", f.events, f.wall.Seconds(), mib(uint64(f.reportRSS/1024)), mib(uint64(f.serveRSS/1024)), f.reported)
}

func (h *harness) flightTarget(p func(string, ...any)) {
	f := h.flight
	p("| %d events (%s of %s failures/s) read from an agent's URL with `report` | report's RSS < %s | %s peak RSS, %.1f s; %d of %d events reported | %s |\n",
		f.events, f.span, rate(h.cfg.agentRate), mib(flightReadRSSTarget/1024), mib(uint64(f.reportRSS/1024)), f.wall.Seconds(), f.reported, f.events,
		verdict(f.reportRSS > 0 && f.reportRSS < flightReadRSSTarget && f.reported == uint64(f.events)))
}
