package report_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/htmlreport"
	"github.com/sendtrace/sendtrace/internal/join"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/render"
	"github.com/sendtrace/sendtrace/internal/report"
	"github.com/sendtrace/sendtrace/internal/session"
)

// markup starts every string the fuzzed recordings hold, so that a page
// that holds any of them unescaped shows it: an escaped one is &lt;zq.
const markup = "<zq"

// FuzzReportText writes two recordings, the two ends of the same
// connections, whose every string (header, events, diagnoses, footer,
// and the files' names) holds the fuzzer's bytes, and renders them as a
// person reads them in a terminal: report, report --conn, diff, report
// of both ends, and the live stream with its exit summary. No byte a
// terminal acts on may come out: nothing below 0x20 but the newlines the
// text is made of, no DEL, no C1 control, nothing that is not UTF-8. The
// JSON of the same (-o json, and the live stream's event and diagnosis
// lines) must be valid JSON that holds none of them either and gives the
// strings back, and the HTML pages of the same must hold none of them
// unescaped.
func FuzzReportText(f *testing.F) {
	for _, seed := range []string{
		"vm\x1b]0;PWNED\x07\x1b[2J",
		"\x1b[31mRED\x1b[0m\r\n\tfake line\x08\x7f",
		"\u009b31m\u009d0;title\u009c\u0085\u008e",
		"\x9b31m\x9d0;x\x07\xff\xfe\xc0\x80",
		"\u202eevil\u2028\u2029\u200b\ufeff",
		`<script>alert(1)</script>&"'\`,
		"plain-name_01",
		"",
		"a\x00b/c\\d%e]f:g",
	} {
		f.Add([]byte(seed))
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	f.Add(all)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRecordingsShown(t, data)
	})
}

// strs hands out the fuzzed strings: the k-th is markup, then the input
// turned k*7 bytes round, at most 48 bytes of it.
type strs struct {
	data []byte
	k    int
}

func (g *strs) next() string {
	g.k++
	b := []byte(markup)
	if n := len(g.data); n > 0 {
		off := g.k * 7 % n
		for i := range min(n, 48) {
			b = append(b, g.data[(off+i)%n])
		}
	}
	return string(b)
}

// fileName is a string as a file's name can hold it.
func (g *strs) fileName() string {
	s := strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, g.next())
	return s[:min(len(s), 60)]
}

var fuzzBoot = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)

const (
	fuzzStart  = uint64(1000 * time.Second)
	fuzzInode  = 4026531840
	fuzzInode2 = 4026532001
)

// lines builds a recording as record.Writer writes one (the header, the
// events and diagnoses, the footer, each a JSON line), without the
// fsync that would make each run of the fuzzer wait for the disk.
type lines struct{ bytes.Buffer }

func (l *lines) json(t *testing.T, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(b)
	l.WriteByte('\n')
}

// writeFuzzRecording writes one end's recording: client holds the SYN_SENT
// end of cookie 11, the server the other end, as cookie 22.
func writeFuzzRecording(t *testing.T, g *strs, path string, client bool) {
	t.Helper()
	start := fuzzStart
	if !client {
		start += uint64(time.Millisecond) // another host's clock
	}
	h := &record.Header{Description: session.Description{
		SendtraceVersion: g.next(), Hostname: g.next(), KernelRelease: g.next(),
		BootTime: fuzzBoot, StartTime: fuzzBoot.Add(time.Duration(start)), StartMonoNS: start,
		Duration: g.next(),
		Filters: session.Filters{PIDs: []uint32{4242}, Comms: []string{g.next(), g.next()},
			Dsts: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}, Ports: []uint16{9000}},
		Hooks: session.Plan{
			{Layer: session.LayerOwnerSeed, Why: g.next(), Tried: []string{g.next()}},
			{Layer: session.LayerSyscallExit, Off: true, Why: g.next()},
			{Layer: g.next(), Hook: g.next(), Active: true, Why: g.next()},
			{Layer: g.next(), Why: g.next()},
		},
		Netns:          session.Netns{PID: 4242, Inode: fuzzInode, Note: g.next()},
		Sysctls:        map[string]string{g.next(): g.next(), "net.ipv4.tcp_retries2": g.next()},
		SysctlsMissing: []string{g.next()},
	}}
	h.Kind, h.Format, h.FormatVersion, h.SchemaVersion = record.KindHeader, record.FormatName, record.FormatVersion, record.EventSchemaVersion
	var w lines
	w.json(t, h)
	comm, via := g.next(), g.next()
	workloads := []*events.Workload{
		{Kind: events.WorkloadKubernetes, Namespace: g.next(), Pod: g.next(), Container: g.next(), ID: g.next()},
		{Kind: events.WorkloadDocker, Name: g.next(), ID: g.next()},
		{Kind: events.WorkloadSystemd, Unit: g.next()},
		{Kind: g.next(), Name: g.next()},
	}
	zone := func() string { return strings.ReplaceAll(g.next(), "%", "_") }
	here, there := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	cookie, snd, rcv := uint64(11), uint32(1000), uint32(2000)
	src, dst := netip.AddrPortFrom(here, 40000), netip.AddrPortFrom(there, 9000)
	if !client {
		cookie, snd, rcv = 22, 2000, 1000
		src, dst = dst, src
	}
	v6src := netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone(zone()), 40001)
	v6dst := netip.AddrPortFrom(netip.MustParseAddr("fe80::2").WithZone(zone()), 9000)

	var n uint64
	mono := start
	emit := func(i int, k events.Kind, c uint64, set func(*events.Event)) {
		mono += uint64(20 * time.Millisecond)
		e := events.Event{
			Time: fuzzBoot.Add(time.Duration(mono)), Mono: mono, Kind: k,
			PID: 4242, TID: 4243, Comm: comm, OwnerKnown: true, Cgroup: 77, Netns: fuzzInode,
			Workload: workloads[i%len(workloads)].Finish(), Cookie: c,
			Family: events.AFInet, Protocol: events.ProtoTCP, Src: src, Dst: dst,
			State: events.StateEstablished, SinceSend: -1, SinceRecv: -1, DataSegsIn: 0,
			MSS: 1448, Cwnd: 10, SndBuf: 16384, SndUna: snd + 1, RcvNxt: rcv + 1,
		}
		if i%3 == 1 {
			e.OwnerVia = via
		}
		set(&e)
		w.Write(events.AppendJSON(nil, &e))
		w.WriteByte('\n')
		n++
	}
	i := 0
	next := func() int { i++; return i }
	if client {
		emit(next(), events.KindStateChange, cookie, func(e *events.Event) {
			e.State, e.OldState, e.Src = events.StateSynSent, events.StateClose, netip.AddrPortFrom(here, 0)
		})
	}
	emit(next(), events.KindStateChange, cookie, func(e *events.Event) {
		e.OldState, e.HasISN, e.SndISN, e.RcvISN = events.StateSynRecv, true, snd, rcv
		if client {
			e.OldState = events.StateSynSent
		}
	})
	rto := 200 * time.Millisecond
	for r := range 4 {
		emit(next(), events.KindRetransmit, cookie, func(e *events.Event) {
			e.Bytes, e.Segs, e.Seq, e.SendQ, e.RetransKind = 100, 1, snd+1, 100, events.RetransRTO
			e.Retransmits, e.Backoff, e.RTO, e.TotalRetrans = uint32(r), uint8(r), rto, uint32(r+1)
			e.SinceSend, e.SinceRecv = rto, time.Second
		})
		rto *= 2
	}
	for _, dir := range []events.DropDir{events.DropOut, events.DropIn} {
		emit(next(), events.KindDrop, cookie, func(e *events.Event) {
			e.Bytes, e.Segs, e.DropDir = 152, 1, dir
			e.DropReason, e.DropLocation, e.DropDev = g.next(), g.next(), g.next()
		})
	}
	if client {
		emit(next(), events.KindReceiveReset, cookie, func(e *events.Event) { e.SinceRecv = time.Second })
	} else {
		emit(next(), events.KindSendReset, cookie, func(e *events.Event) { e.ResetReason = 5 })
	}
	emit(next(), events.KindErrorReport, cookie, func(e *events.Event) { e.Errno, e.State = 104, events.StateClose })
	emit(next(), events.KindSendError, cookie, func(e *events.Event) {
		e.Errno, e.StackErrno, e.Bytes, e.State, e.Syscall, e.Layer = 32, 32, 100, events.StateClose, g.next(), events.LayerBoth
	})
	emit(next(), events.KindStateChange, cookie, func(e *events.Event) {
		e.State, e.OldState = events.StateClose, events.StateEstablished
	})
	// A black hole over IPv6, between addresses with zones.
	src, dst = v6src, v6dst
	emit(next(), events.KindStateChange, 33, func(e *events.Event) {
		e.Family, e.State, e.OldState = events.AFInet6, events.StateSynSent, events.StateClose
	})
	for r := range 3 {
		emit(next(), events.KindRetransmit, 33, func(e *events.Event) {
			e.Family, e.State, e.RetransKind, e.Segs, e.Backoff = events.AFInet6, events.StateSynSent, events.RetransSYN, 1, uint8(r)
		})
	}
	emit(next(), events.KindErrorReport, 33, func(e *events.Event) {
		e.Family, e.Errno, e.State = events.AFInet6, 110, events.StateClose
	})
	// An owner the kernel never saw.
	emit(next(), events.KindSendError, 44, func(e *events.Event) {
		e.Comm, e.OwnerKnown, e.PID, e.Errno, e.Syscall, e.Layer = g.next(), false, 0, 13, g.next(), events.LayerSyscall
	})
	w.Write(diagnose.AppendJSON(nil, &diagnose.Diagnosis{
		Time: fuzzBoot.Add(time.Duration(mono)), Mono: mono, Rule: g.next(), Name: g.next(), Cookie: cookie,
		PID: 4242, Comm: g.next(), OwnerKnown: true, Proto: events.ProtoTCP, Dst: dst, Errno: 104,
		Confidence: g.next(), ConfidenceWhy: g.next(), NextStep: g.next(),
		Evidence: diagnose.Evidence{Text: g.next(), Kinds: []string{g.next()}, Syscall: g.next(), Setting: g.next(),
			DropReason: g.next(), DropLocation: g.next(), DropDev: g.next(), DropDir: g.next(),
			SinceSend: -1, SinceRecv: -1, PeerDataAge: -1},
	}))
	w.WriteByte('\n')

	sends, sent := uint64(50), uint64(5000)
	end := fuzzBoot.Add(time.Duration(mono + uint64(time.Second)))
	counters := func(inode uint64, from string) session.NetnsCounters {
		return session.NetnsCounters{Netns: session.Netns{PID: 4242, Inode: inode, Note: g.next()}, Comm: g.next(), From: from,
			Start: h.StartTime, End: end, Delta: map[string]int64{g.next(): 7, "TcpRetransSegs": 4, "TcpOutSegs": 1000, "TcpExtTCPTimeouts": 4}}
	}
	foot := &record.Footer{
		EndTime: end, EndMonoNS: mono + uint64(time.Second), DurationSec: 2, Events: n,
		ByKind:            map[string]uint64{g.next(): 3, "send_error": 2},
		ByErrno:           map[string]map[string]uint64{g.next(): {g.next(): 2}, "send_error": {g.next(): 1}},
		RetransSegsByKind: map[string]uint64{g.next(): 1, "rto": 4},
		Totals: []record.TotalsRow{
			{PID: 4242, Dst: dst.String(), Kind: "retransmit", Detail: g.next(), Count: 4, Segs: 4},
			{PID: 4242, Dst: g.next(), Kind: "drop", Detail: g.next(), Count: 2},
			{PID: 4242, Kind: g.next(), Detail: g.next(), ErrnoName: g.next(), Count: 1},
			{PID: 4242, Kind: "send_error", Errno: 32, ErrnoName: g.next(), Count: 1, Bytes: 100},
			{PID: 4999, Kind: "error_report", Errno: 104, ErrnoName: g.next(), Count: 1},
		},
		DestinationsSource: "kernel",
		Destinations: []record.DestStats{
			{Dst: dst.String(), Sends: &sends, Bytes: &sent, RetransSegs: 4},
			{Dst: g.next(), Sends: &sends, Bytes: &sent},
		},
		Lost: record.Lost{Kernel: 1, User: 1},
		Namespaces: []session.NetnsSysctls{{
			Netns: session.Netns{PID: 4243, Inode: fuzzInode2, Note: g.next()}, Comm: g.next(),
			Sysctls: map[string]string{g.next(): g.next()}, SysctlsMissing: []string{g.next()},
		}},
		NetnsCounters: []session.NetnsCounters{counters(fuzzInode, "start"), counters(fuzzInode2, g.next())},
	}
	foot.Kind = record.KindFooter
	w.json(t, foot)
	if err := os.WriteFile(path, w.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkRecordingsShown is one run of FuzzReportText.
func checkRecordingsShown(t *testing.T, data []byte) {
	g := &strs{data: data}
	dir := t.TempDir()
	pathA := filepath.Join(dir, "a-"+g.fileName()+".jsonl")
	pathB := filepath.Join(dir, "b-"+g.fileName()+".jsonl")
	writeFuzzRecording(t, g, pathA, true)
	writeFuzzRecording(t, g, pathB, false)

	load := func(path string, o report.Options, also ...pipeline.Sink) *report.Recording {
		t.Helper()
		r, err := report.Load(path, o, also...)
		if err != nil {
			t.Fatalf("load a fuzzed recording: %v", err)
		}
		return r
	}
	// One replay of a serves its report, its timeline of cookie 11 and
	// its page.
	col := htmlreport.NewCollector(5)
	a, b := load(pathA, report.Options{Conn: 11}, col), load(pathB, report.Options{})
	var out bytes.Buffer
	show := func(what string, write func() error) string {
		t.Helper()
		out.Reset()
		if err := write(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		checkTerminalText(t, what, out.Bytes())
		return out.String()
	}

	repA := report.Build(a, report.BuildOptions{})
	text := show("report", func() error { return report.WriteText(&out, a, repA) })
	if host := format.Printable(a.Header.Hostname); !strings.Contains(text, "host "+host+",") {
		t.Errorf("the report does not name the host as %q", host)
	}
	show("report of the other end", func() error { return report.WriteText(&out, b, report.Build(b, report.BuildOptions{})) })
	show("report --conn 11", func() error { return report.WriteTimelineText(&out, a, 11) })
	v6 := load(pathA, report.Options{Conn: 33})
	show("report --conn 33", func() error { return report.WriteTimelineText(&out, v6, 33) })
	d := report.Compare(a, b)
	text = show("diff", func() error { return report.WriteDiffText(&out, d) })
	if host := format.Printable(b.Header.Hostname); !strings.Contains(text, host) {
		t.Errorf("the diff does not name the host as %q", host)
	}
	recs, err := join.Load([]string{pathA, pathB}, join.Replay(diagnose.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	both := join.Join(recs)
	if len(both.Joined) != 1 {
		t.Errorf("%d connections joined, want cookie 11 with 22", len(both.Joined))
	}
	show("report of both ends", func() error { return join.WriteText(&out, both) })
	text = show("live stream and exit summary", func() error {
		stream := render.NewText(&out)
		stream.SetLocation(time.UTC)
		_, err := record.Replay(pathA, pipeline.New(diagnose.New(diagnose.Config{}), stream, render.NewSummarySink(&out)))
		return err
	})
	// As the recording gives it back: JSON has made bytes that are not
	// UTF-8 into U+FFFD.
	if shown := format.Printable(a.Timeline[0].Comm) + "/4242"; !strings.Contains(text, shown) {
		t.Errorf("the live stream does not name the process as %q", shown)
	}

	// JSON stays JSON, and keeps the strings as the recording had them.
	checkJSON(t, "report -o json", func(w *bytes.Buffer) error { return report.WriteJSON(w, repA) },
		func(v map[string]any) bool { return v["hostname"] == a.Header.Hostname })
	checkJSON(t, "diff -o json", func(w *bytes.Buffer) error { return report.WriteJSON(w, d) },
		func(v map[string]any) bool { return v["after"].(map[string]any)["hostname"] == b.Header.Hostname })
	checkJSON(t, "report -o json of both ends", func(w *bytes.Buffer) error { return join.WriteJSON(w, both) },
		func(v map[string]any) bool {
			return v["recordings"].([]any)[0].(map[string]any)["host"] == a.Header.Hostname
		})
	for i := range a.Timeline {
		e := &a.Timeline[i]
		checkJSON(t, "an event in -o json", func(w *bytes.Buffer) error { w.Write(events.AppendJSON(nil, e)); return nil },
			func(v map[string]any) bool { return v["comm"] == e.Comm })
	}
	for i := range a.Diagnoses {
		d := &a.Diagnoses[i]
		checkJSON(t, "a diagnosis in -o json", func(w *bytes.Buffer) error { w.Write(diagnose.AppendJSON(nil, d)); return nil },
			func(v map[string]any) bool {
				return v["comm"] == d.Comm && v["evidence"].(map[string]any)["text"] == d.Evidence.Text
			})
	}

	// The pages of the same recordings.
	checkPage(t, "report page", func(w *bytes.Buffer) error {
		return htmlreport.WriteReport(w, a, col, htmlreport.Options{Conns: 5, Top: 10})
	})
	checkPage(t, "diff page", func(w *bytes.Buffer) error { return htmlreport.WriteDiff(w, a, b) })
	checkPage(t, "both ends page", func(w *bytes.Buffer) error {
		return htmlreport.WriteBothEnds(w, both, []*report.Recording{a, b}, htmlreport.Options{Conns: 5})
	})
}

// checkTerminalText fails for every byte of out a terminal would act on:
// C0 controls other than newline, DEL, C1 controls, and bytes that are
// not UTF-8 (a lone 0x9b is CSI to an 8-bit terminal).
func checkTerminalText(t *testing.T, what string, out []byte) {
	t.Helper()
	for i := 0; i < len(out); {
		r, size := utf8.DecodeRune(out[i:])
		bad := ""
		switch {
		case r == utf8.RuneError && size == 1:
			bad = "a byte that is not UTF-8"
		case r < 0x20 && r != '\n':
			bad = "a C0 control"
		case r == 0x7f:
			bad = "DEL"
		case r >= 0x80 && r <= 0x9f:
			bad = "a C1 control"
		}
		if bad != "" {
			lo := bytes.LastIndexByte(out[:i], '\n') + 1
			hi := bytes.IndexByte(out[i:], '\n')
			if hi < 0 {
				hi = len(out) - i
			}
			t.Fatalf("%s writes %s (%q) to the terminal at byte %d, in the line %q", what, bad, out[i:i+size], i, out[lo:i+hi])
		}
		i += size
	}
}

// checkJSON fails unless write writes valid JSON that a terminal can show
// as checkTerminalText has it (every control character in its strings
// escaped), from which same accepts the value read back.
func checkJSON(t *testing.T, what string, write func(*bytes.Buffer) error, same func(map[string]any) bool) {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !json.Valid(buf.Bytes()) {
		t.Fatalf("%s is not valid JSON: %q", what, buf.Bytes())
	}
	checkTerminalText(t, what, buf.Bytes())
	var v map[string]any
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !same(v) {
		t.Errorf("%s does not give back the recording's strings as they were", what)
	}
}

// checkPage fails when a page holds a string of the recordings
// unescaped: every one of them starts with markup.
func checkPage(t *testing.T, what string, write func(*bytes.Buffer) error) {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if i := bytes.Index(buf.Bytes(), []byte(markup)); i >= 0 {
		lo, hi := max(i-80, 0), min(i+80, buf.Len())
		t.Fatalf("the %s holds a string from a recording unescaped: %q", what, buf.Bytes()[lo:hi])
	}
	if !bytes.Contains(buf.Bytes(), []byte("&lt;zq")) {
		t.Errorf("the %s shows none of the recordings' strings", what)
	}
}
