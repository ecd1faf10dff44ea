package report

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
)

const sec = uint64(time.Second)

// blackHoleEvents is one connection's story against a black hole: RTO
// backoff retransmits, then the error report and the failed send.
func blackHoleEvents(cookie uint64, start uint64, backoffs int) []events.Event {
	base := events.Event{
		PID: 7, TID: 7, Comm: "app", OwnerKnown: true, Cookie: cookie, Family: 2, Protocol: 6,
		Src: netip.MustParseAddrPort("198.18.0.1:40000"), Dst: netip.MustParseAddrPort("198.18.0.2:9000"),
		State: 1, SinceSend: -1, SinceRecv: -1,
	}
	var out []events.Event
	t := start
	rto := 200 * uint64(time.Millisecond)
	for i := 0; i < backoffs; i++ {
		e := base
		e.Kind, e.Mono, e.Bytes, e.Retransmits = events.KindRetransmit, t, 1448, uint32(i+1)
		e.Segs, e.RetransKind = 1, events.RetransRTO
		out = append(out, e)
		t += rto
		rto *= 2
	}
	t -= rto / 2
	er := base
	er.Kind, er.Mono, er.Errno = events.KindErrorReport, t, 110
	sendErr := base
	sendErr.Kind, sendErr.Mono, sendErr.Errno, sendErr.Bytes, sendErr.Layer, sendErr.Syscall = events.KindSendError, t+1000, 110, 100, events.LayerBoth, "sendto"
	return append(out, er, sendErr)
}

type recOpts struct {
	sysctls map[string]string
	footer  bool
	sends   uint64
	netns   []session.NetnsSysctls // footer's namespaces
	// totals are added to the kernel's totals the events make.
	totals map[events.TotalsKey]events.TotalsValue
}

func writeRec(t *testing.T, name string, o recOpts, evs []events.Event) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	h := &record.Header{Description: session.Description{SendtraceVersion: "test", Sysctls: o.sysctls,
		StartMonoNS: 1000 * sec, BootTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	h.StartTime = h.Wall(h.StartMonoNS)
	w, err := record.Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	tot := &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}}
	var end uint64
	for i := range evs {
		e := &evs[i]
		e.Time = h.BootTime.Add(time.Duration(e.Mono))
		if err := w.WriteEvent(e); err != nil {
			t.Fatal(err)
		}
		k := events.TotalsKeyOf(e)
		v := tot.ByKey[k]
		v.Count++
		v.Segs += uint64(e.Segs)
		tot.ByKey[k] = v
		end = max(end, e.Mono)
	}
	for k, v := range o.totals {
		tot.ByKey[k] = v
	}
	var f *record.Footer
	if o.footer {
		var dests []record.DestStats
		src := "events"
		if o.sends > 0 {
			s, b := o.sends, o.sends*100
			dests = []record.DestStats{{Dst: "198.18.0.2:9000", Sends: &s, Bytes: &b}}
			src = "kernel"
		}
		f = record.NewFooter(&session.End{Time: h.Wall(end + sec), MonoNS: end + sec, Totals: tot, Namespaces: o.netns}, h, w.Events(), dests, src)
	}
	if err := w.Close(f); err != nil {
		t.Fatal(err)
	}
	return path
}

func conns(n int, backoffs int) []events.Event {
	var evs []events.Event
	for i := 0; i < n; i++ {
		evs = append(evs, blackHoleEvents(uint64(100+i), 1001*sec+uint64(i)*sec/10, backoffs)...)
	}
	return evs
}

func TestReportAndTimeline(t *testing.T) {
	path := writeRec(t, "r.jsonl", recOpts{footer: true, sysctls: map[string]string{"net.ipv4.tcp_retries2": "4"}}, conns(3, 6))
	rec, err := Load(path, Options{Conn: 101})
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(rec, BuildOptions{})
	if !rep.Complete || rep.CountsFrom != "kernel" || len(rep.Problems) != 0 {
		t.Errorf("complete %v counts %s problems %q", rep.Complete, rep.CountsFrom, rep.Problems)
	}
	if rep.TTF == nil || rep.TTF.N != 3 {
		t.Fatalf("time to failure %+v, want 3 connections", rep.TTF)
	}
	// 0.2+0.4+0.8+1.6+3.2 s of backoff after the first retransmit.
	if want := 6200 * time.Millisecond; rep.TTF.P50 != want {
		t.Errorf("p50 %v, want %v", rep.TTF.P50, want)
	}
	if len(rep.Destinations) != 1 || rep.Destinations[0].SendErrors != 3 {
		t.Errorf("destinations %+v", rep.Destinations)
	}
	if len(rep.Processes) != 1 || rep.Processes[0].Comm != "app" || rep.Processes[0].Connections != 3 {
		t.Errorf("processes %+v", rep.Processes)
	}
	var failures uint64
	for _, b := range rep.Buckets.Rows {
		failures += b.SendErrors
	}
	if failures != 3 {
		t.Errorf("buckets count %d send errors, want 3", failures)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, rec, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Top failing destinations", "Top failing processes", "Failed connections", "Failures over time", "stream complete"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, buf.String())
		}
	}

	buf.Reset()
	if err := WriteTimelineText(&buf, rec, 101); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4+8 {
		t.Fatalf("timeline has %d lines, want 4 + 8 events:\n%s", len(lines), buf.String())
	}
	if lines[3] != "retransmitted 6 segments (rto 6) in 6 retransmits" {
		t.Errorf("timeline line 3 = %q, want the segments retransmitted", lines[3])
	}
	// The diagnosis of the connection comes at the top.
	if !strings.HasPrefix(lines[1], "diagnosis: black-hole") {
		t.Errorf("timeline line 1 = %q, want the black-hole diagnosis", lines[1])
	}
	for i, want := range []string{"+0.000    retransmit len=1448", "+0.200    retransmit", "+6.200    error_report ETIMEDOUT", "+6.200    send_error ETIMEDOUT"} {
		idx := []int{4, 5, 10, 11}[i]
		if !strings.HasPrefix(lines[idx], want) {
			t.Errorf("timeline line %d = %q, want prefix %q", idx, lines[idx], want)
		}
	}
	if _, err := BuildTimeline(rec, 999); err == nil || !strings.Contains(err.Error(), "connections that failed: 100, 101, 102") {
		t.Errorf("unknown cookie: %v", err)
	}
}

func TestReportWithoutFooter(t *testing.T) {
	path := writeRec(t, "r.jsonl", recOpts{}, conns(1, 3))
	rec, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(rec, BuildOptions{})
	if rep.Complete || rep.CountsFrom != "events" || len(rep.Problems) == 0 || !strings.HasPrefix(rep.Problems[0], "footer missing") {
		t.Errorf("complete %v counts %s problems %q", rep.Complete, rep.CountsFrom, rep.Problems)
	}
	if rep.ByKind["retransmit"] != 3 {
		t.Errorf("by kind %v", rep.ByKind)
	}
}

func TestHeaderOnly(t *testing.T) {
	path := writeRec(t, "r.jsonl.gz", recOpts{}, nil)
	rec, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, rec, Build(rec, BuildOptions{})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "footer missing") || !strings.Contains(buf.String(), "no failed sends were seen") {
		t.Errorf("header-only report:\n%s", buf.String())
	}
}

func TestLoadErrorsNameTheLine(t *testing.T) {
	path := writeRec(t, "r.jsonl", recOpts{footer: true}, conns(1, 2))
	b, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines[2] = []byte("{\"kind\":\"retransmit\",\"time\":\n")
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, bytes.Join(lines, nil), 0o600)
	_, err := Load(bad, Options{})
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), bad) {
		t.Errorf("error %v: want the file and line 3", err)
	}
}

func TestDiff(t *testing.T) {
	before := writeRec(t, "a.jsonl", recOpts{footer: true, sends: 1000, sysctls: map[string]string{"net.ipv4.tcp_retries2": "8", "net.core.wmem_max": "1"}}, conns(6, 9))
	after := writeRec(t, "b.jsonl", recOpts{footer: true, sends: 1000, sysctls: map[string]string{"net.ipv4.tcp_retries2": "4", "net.core.wmem_max": "1"}}, conns(6, 5))
	a, err := Load(before, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(after, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := Compare(a, b)
	if len(d.Sysctls) != 1 || d.Sysctls[0] != (SysctlDiff{"net.ipv4.tcp_retries2", "8", "4"}) || d.SysctlsCompared != 2 {
		t.Errorf("sysctls %+v of %d", d.Sysctls, d.SysctlsCompared)
	}
	if d.TTF.Verdict != VerdictChanged || d.TTF.After.Max >= d.TTF.Before.Min {
		t.Errorf("ttf %+v", d.TTF)
	}
	byName := map[string]Metric{}
	for _, m := range d.Metrics {
		byName[m.Name] = m
	}
	m := byName["failed sends per 1,000 sends"]
	if m.Before == nil || *m.Before != 6 || m.Verdict != VerdictTooFew {
		t.Errorf("failed per 1000: %+v (6 of 1000 both sides is too few to call)", m)
	}
	if m := byName["retransmitted segments per MB sent"]; m.Verdict != VerdictChanged || m.ChangePct == nil || *m.ChangePct >= 0 {
		t.Errorf("retransmits per MB: %+v (54 vs 30 per 0.1 MB)", m)
	}
	if len(d.Destinations) != 1 {
		t.Errorf("destinations %+v", d.Destinations)
	}
	var buf bytes.Buffer
	if err := WriteDiffText(&buf, d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"net.ipv4.tcp_retries2  8       4", "too few to tell", "time to failure p50"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("diff text lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestDiffWithoutTraffic(t *testing.T) {
	p := writeRec(t, "a.jsonl", recOpts{footer: true}, conns(2, 3))
	a, _ := Load(p, Options{})
	d := Compare(a, a)
	for _, m := range d.Metrics {
		if strings.Contains(m.Name, "per 1,000 sends") || strings.Contains(m.Name, "per MB") {
			if m.Verdict != VerdictUnknown || m.Before != nil || !strings.Contains(m.Why, "not counted") {
				t.Errorf("%s without sends: %+v", m.Name, m)
			}
		}
	}
	if d.TTF.Verdict != VerdictTooFew {
		t.Errorf("2 connections: verdict %q", d.TTF.Verdict)
	}
}

func TestRateVerdict(t *testing.T) {
	for _, c := range []struct {
		a, b   uint64
		ea, eb float64
		want   string
	}{
		{5, 50, 1, 1, VerdictTooFew},
		{0, 50, 1, 1, VerdictChanged},
		{100, 110, 1, 1, VerdictSame},
		{100, 200, 1, 1, VerdictChanged},
		{100, 200, 1, 2, VerdictSame}, // twice the traffic, twice the failures
	} {
		if got := rateVerdict(c.a, c.b, c.ea, c.eb); got != c.want {
			t.Errorf("rateVerdict(%d, %d, %v, %v) = %q, want %q", c.a, c.b, c.ea, c.eb, got, c.want)
		}
	}
}
