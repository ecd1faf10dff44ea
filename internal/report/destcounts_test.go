package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"
)

// Events were lost while recording: 2 connections' error reports and
// send errors reached the file, the kernel counted 50 and 70, and 4
// resets none of which arrived. The destination gives the kernel's
// counts, with the events in the file beside them.
func TestDestinationCountsFromTotals(t *testing.T) {
	dst := netip.MustParseAddrPort("198.18.0.2:9000")
	path := writeRec(t, "r.jsonl", recOpts{footer: true, totals: map[events.TotalsKey]events.TotalsValue{
		{PID: 7, Kind: events.KindErrorReport, Errno: 110, Dst: dst}: {Count: 50},
		{PID: 7, Kind: events.KindSendError, Errno: 110, Dst: dst}:   {Count: 70, Bytes: 7000},
		{PID: 7, Kind: events.KindReceiveReset, Dst: dst}:            {Count: 4},
	}}, conns(2, 1))
	rec, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(rec, BuildOptions{})
	if len(rep.Destinations) != 1 {
		t.Fatalf("destinations %+v", rep.Destinations)
	}
	d := rep.Destinations[0]
	if d.SendErrors != 70 || d.ErrorReports != 50 || d.Resets != 4 || !d.CountsExact || d.Errnos["ETIMEDOUT"] != 70 {
		t.Errorf("destination %+v, want the kernel's 70 send errors, 50 error reports, 4 resets", d)
	}
	if want := (DestReceived{SendErrors: 2, ErrorReports: 2}); d.Received == nil || *d.Received != want {
		t.Errorf("received %+v, want %+v", d.Received, want)
	}
	js, _ := json.Marshal(d)
	if !strings.Contains(string(js), `"counts_exact":true,"received":{"send_errors":2,"error_reports":2,"resets":0}`) {
		t.Errorf("json %s", js)
	}
	if len(rep.Processes) != 1 {
		t.Fatalf("processes %+v", rep.Processes)
	}
	p := rep.Processes[0]
	if p.SendErrors != 70 || p.ErrorReports != 50 || !p.CountsExact || p.Received == nil || *p.Received != (ProcFailures{SendErrors: 2, ErrorReports: 2}) {
		t.Errorf("process %+v (received %+v), want the kernel's 70 send errors and 50 error reports, 2 and 2 received", p, p.Received)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, rec, rep); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, want := range []string{
		"Top failing destinations (send errors, error reports and resets: kernel's totals, exact, events received in brackets where fewer arrived)",
		dst.String() + "  70 (2 received)  ETIMEDOUT:70  50 (2 received)",
		"4 (0 received)",
		"Top failing processes (send errors and error reports: kernel's totals, exact",
		"7    app   70 (2 received)  ETIMEDOUT:70  50 (2 received)",
		// Tables of single events cannot be the kernel's, and say so.
		"Failed connections (from the events in the file;",
		"Failures over time (buckets of 100ms from the start; from the events in the file)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
}

// A recording without a footer counts only its events, and says so; one
// whose totals were complete shows the counts alone.
func TestDestinationCountsFromEvents(t *testing.T) {
	for _, footer := range []bool{false, true} {
		path := writeRec(t, "r.jsonl", recOpts{footer: footer}, conns(2, 1))
		rec, err := Load(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		rep := Build(rec, BuildOptions{})
		d := rep.Destinations[0]
		if d.SendErrors != 2 || d.ErrorReports != 2 || d.CountsExact != footer || d.Received != nil {
			t.Errorf("footer %v: destination %+v", footer, d)
		}
		p := rep.Processes[0]
		if p.SendErrors != 2 || p.ErrorReports != 2 || p.CountsExact != footer || p.Received != nil {
			t.Errorf("footer %v: process %+v", footer, p)
		}
		var buf bytes.Buffer
		if err := WriteText(&buf, rec, rep); err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{false: "from the events received", true: "kernel's totals, exact"}[footer]
		if !strings.Contains(buf.String(), "Top failing destinations (send errors, error reports and resets: "+want) || strings.Contains(buf.String(), "received)  ") {
			t.Errorf("footer %v: text report:\n%s", footer, buf.String())
		}
	}
}
