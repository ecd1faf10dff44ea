package diagnose

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

// jsonDiagnosis mirrors the "diagnosis" record of docs/json-schema.md.
// Diagnoses are rare, so encoding/json's cost does not matter here.
type jsonDiagnosis struct {
	Kind          string       `json:"kind"`
	Time          string       `json:"time"`
	Mono          uint64       `json:"mono_ns"`
	Rule          string       `json:"rule"`
	Name          string       `json:"name"`
	Cookie        uint64       `json:"cookie"`
	PID           uint32       `json:"pid"`
	Comm          string       `json:"comm"`
	OwnerKnown    bool         `json:"owner_known"`
	Proto         string       `json:"proto"`
	Src           string       `json:"src"`
	Dst           string       `json:"dst"`
	Errno         int32        `json:"errno"`
	ErrnoName     string       `json:"errno_name"`
	Confidence    string       `json:"confidence"`
	ConfidenceWhy string       `json:"confidence_why"`
	Evidence      jsonEvidence `json:"evidence"`
	NextStep      string       `json:"next_step"`
}

type jsonEvidence struct {
	Text         string   `json:"text"`
	Events       int      `json:"events"`
	Kinds        []string `json:"kinds,omitempty"`
	Retransmits  int      `json:"retransmits,omitempty"`
	RetransSegs  uint64   `json:"retrans_segs,omitempty"`
	SameSeq      int      `json:"same_seq_retransmits,omitempty"`
	SegmentBytes uint32   `json:"segment_bytes,omitempty"`
	MSS          uint32   `json:"mss,omitempty"`
	MSSChanged   bool     `json:"mss_changed,omitempty"`
	MaxBackoff   uint8    `json:"max_backoff,omitempty"`
	MaxRTOMs     float64  `json:"max_rto_ms,omitempty"`
	SpanMs       float64  `json:"span_ms,omitempty"`
	IdleMs       float64  `json:"idle_ms,omitempty"`
	SinceSendMs  float64  `json:"since_send_ms"`
	SinceRecvMs  float64  `json:"since_recv_ms"`
	PeerDataAge  float64  `json:"peer_data_age_ms"`
	Resets       int      `json:"resets,omitempty"`
	ErrorReports int      `json:"error_reports,omitempty"`
	State        string   `json:"state,omitempty"`
	SendQ        uint32   `json:"send_q,omitempty"`
	SndBuf       uint32   `json:"sndbuf,omitempty"`
	SndWnd       *uint32  `json:"snd_wnd,omitempty"`
	Layer        string   `json:"layer,omitempty"`
	Syscall      string   `json:"syscall,omitempty"`
	TimeoutMs    float64  `json:"timeout_ms,omitempty"`
	Setting      string   `json:"setting,omitempty"`
	Connections  int      `json:"connections,omitempty"`
	Failures     int      `json:"failures,omitempty"`
	WindowMs     float64  `json:"window_ms,omitempty"`
	RatePerSec   float64  `json:"rate_per_sec,omitempty"`
	Drops        int      `json:"drops,omitempty"`
	DropReason   string   `json:"drop_reason,omitempty"`
	DropLocation string   `json:"drop_location,omitempty"`
	DropDev      string   `json:"drop_dev,omitempty"`
	DropDir      string   `json:"drop_dir,omitempty"`
}

func ms(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return float64(d) / float64(time.Millisecond)
}

func fromMs(v float64) time.Duration {
	if v < 0 {
		return -1
	}
	return time.Duration(math.Round(v * float64(time.Millisecond)))
}

// AppendJSON appends d as one {"kind":"diagnosis",...} object, without a
// trailing newline.
func AppendJSON(dst []byte, d *Diagnosis) []byte {
	j := jsonDiagnosis{
		Kind: "diagnosis", Time: d.Time.UTC().Format(time.RFC3339Nano), Mono: d.Mono,
		Rule: d.Rule, Name: d.Name, Cookie: d.Cookie, PID: d.PID, Comm: d.Comm, OwnerKnown: d.OwnerKnown,
		Proto: events.ProtoName(d.Proto), Src: events.AddrString(d.Src), Dst: events.AddrString(d.Dst),
		Errno: d.Errno, ErrnoName: events.ErrnoName(d.Errno),
		Confidence: d.Confidence, ConfidenceWhy: d.ConfidenceWhy, NextStep: d.NextStep,
	}
	e := &d.Evidence
	j.Evidence = jsonEvidence{
		Text: e.Text, Events: e.Events, Kinds: e.Kinds, Retransmits: e.Retransmits, RetransSegs: e.RetransSegs, SameSeq: e.SameSeq,
		SegmentBytes: e.SegmentBytes, MSS: e.MSS, MSSChanged: e.MSSChanged, MaxBackoff: e.MaxBackoff,
		MaxRTOMs: ms(e.MaxRTO), SpanMs: ms(e.Span), IdleMs: ms(e.Idle),
		SinceSendMs: ms(e.SinceSend), SinceRecvMs: ms(e.SinceRecv), PeerDataAge: ms(e.PeerDataAge),
		Resets: e.Resets, ErrorReports: e.ErrorReports, State: events.StateName(e.State),
		SendQ: e.SendQ, SndBuf: e.SndBuf, Layer: e.Layer.String(), Syscall: e.Syscall,
		TimeoutMs: ms(e.Timeout), Setting: e.Setting, Connections: e.Connections, Failures: e.Failures,
		WindowMs: ms(e.Window), RatePerSec: math.Round(e.Rate*100) / 100,
		Drops: e.Drops, DropReason: e.DropReason, DropLocation: e.DropLocation, DropDev: e.DropDev, DropDir: e.DropDir,
	}
	if d.Rule == RuleBackpressure && e.SndBuf > 0 {
		// A zero window is the point of this diagnosis, so 0 is written.
		w := e.SndWnd
		j.Evidence.SndWnd = &w
	}
	b, err := json.Marshal(&j)
	if err != nil {
		// Every field is a plain value; Marshal cannot fail on it.
		panic(err)
	}
	// Escaped as the event records are: a terminal shows the live
	// stream's diagnoses too.
	return append(dst, events.EscapeJSONControls(b)...)
}

// ErrNotDiagnosis is returned by ParseJSON for a record of another kind.
var ErrNotDiagnosis = errors.New("not a diagnosis record")

// ParseJSON decodes one line written by AppendJSON.
func ParseJSON(line []byte, d *Diagnosis) error {
	var j jsonDiagnosis
	if err := json.Unmarshal(line, &j); err != nil {
		return fmt.Errorf("decoding diagnosis: %w", err)
	}
	if j.Kind != "diagnosis" {
		return fmt.Errorf("decoding diagnosis: kind %q: %w", j.Kind, ErrNotDiagnosis)
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return fmt.Errorf("decoding diagnosis: time: %w", err)
	}
	out := Diagnosis{
		Time: t, Mono: j.Mono, Rule: j.Rule, Name: j.Name, Cookie: j.Cookie, PID: j.PID, Comm: j.Comm,
		OwnerKnown: j.OwnerKnown, Errno: j.Errno, Confidence: j.Confidence, ConfidenceWhy: j.ConfidenceWhy,
		NextStep: j.NextStep,
	}
	if out.Proto, err = events.ParseProto(j.Proto); err != nil {
		return fmt.Errorf("decoding diagnosis: %w", err)
	}
	for _, f := range []struct {
		s   string
		dst *netip.AddrPort
	}{{j.Src, &out.Src}, {j.Dst, &out.Dst}} {
		if f.s == "" {
			continue
		}
		if *f.dst, err = netip.ParseAddrPort(f.s); err != nil {
			return fmt.Errorf("decoding diagnosis: %w", err)
		}
	}
	if out.Errno == 0 && j.ErrnoName != "" {
		if out.Errno, err = events.ParseErrno(j.ErrnoName); err != nil {
			return fmt.Errorf("decoding diagnosis: %w", err)
		}
	}
	e := j.Evidence
	out.Evidence = Evidence{
		Text: e.Text, Events: e.Events, Kinds: e.Kinds, Retransmits: e.Retransmits, RetransSegs: e.RetransSegs, SameSeq: e.SameSeq,
		SegmentBytes: e.SegmentBytes, MSS: e.MSS, MSSChanged: e.MSSChanged, MaxBackoff: e.MaxBackoff,
		MaxRTO: fromMs(e.MaxRTOMs), Span: fromMs(e.SpanMs), Idle: fromMs(e.IdleMs),
		SinceSend: fromMs(e.SinceSendMs), SinceRecv: fromMs(e.SinceRecvMs), PeerDataAge: fromMs(e.PeerDataAge),
		Resets: e.Resets, ErrorReports: e.ErrorReports, SendQ: e.SendQ, SndBuf: e.SndBuf,
		Layer: events.ParseLayer(e.Layer), Syscall: e.Syscall, Timeout: fromMs(e.TimeoutMs), Setting: e.Setting,
		Connections: e.Connections, Failures: e.Failures, Window: fromMs(e.WindowMs), Rate: e.RatePerSec,
		Drops: e.Drops, DropReason: e.DropReason, DropLocation: e.DropLocation, DropDev: e.DropDev, DropDir: e.DropDir,
	}
	if e.SndWnd != nil {
		out.Evidence.SndWnd = *e.SndWnd
	}
	if out.Evidence.State, err = events.ParseStateName(e.State); err != nil {
		return fmt.Errorf("decoding diagnosis: %w", err)
	}
	*d = out
	return nil
}

// String is the one-line text form: rule, confidence, who and where, the
// evidence and the next step. A diagnosis read from a recording holds
// whatever text the file gave it, so every text is escaped.
func (d *Diagnosis) String() string {
	var b strings.Builder
	b.WriteString(format.Printable(d.Rule))
	b.WriteString(" (")
	b.WriteString(format.Printable(d.Confidence))
	b.WriteString(" confidence): ")
	b.WriteString(format.Printable(d.Name))
	b.WriteString(" — ")
	b.WriteString(format.Process(d.Comm, d.PID, d.OwnerKnown))
	if d.Dst.IsValid() {
		b.WriteString(" -> ")
		b.WriteString(format.Addr(d.Dst))
	}
	if d.Cookie != 0 {
		// The number --conn takes, and the cookie ss -e prints.
		b.WriteString(" cookie ")
		b.WriteString(strconv.FormatUint(d.Cookie, 10))
	}
	if d.Errno != 0 {
		b.WriteString(" ")
		b.WriteString(events.ErrnoName(d.Errno))
	}
	b.WriteString(": ")
	b.WriteString(format.Printable(d.Evidence.Text))
	if d.ConfidenceWhy != "" {
		b.WriteString(". Confidence ")
		b.WriteString(format.Printable(d.Confidence))
		b.WriteString(": ")
		b.WriteString(format.Printable(d.ConfidenceWhy))
	}
	b.WriteString(". Next: ")
	b.WriteString(format.Printable(d.NextStep))
	return b.String()
}

// TextPrefix starts the line live mode writes under the event that
// concluded a diagnosis.
const TextPrefix = "  => diagnosis: "

// AppendText appends the live-mode line for d, without a newline.
func AppendText(dst []byte, d *Diagnosis) []byte {
	return append(append(dst, TextPrefix...), d.String()...)
}

// RenderSummary writes the failures grouped by diagnosis, each group with
// its next step. It writes nothing when ds is empty.
func RenderSummary(w io.Writer, ds []Diagnosis) error {
	if len(ds) == 0 {
		return nil
	}
	type group struct {
		rule, name string
		n          int
		conf       map[string]int
		procs      map[string]int
		dsts       map[string]int
		errnos     map[string]int
		next       string
	}
	groups := map[string]*group{}
	for i := range ds {
		d := &ds[i]
		g := groups[d.Rule]
		if g == nil {
			g = &group{rule: format.Printable(d.Rule), name: format.Printable(d.Name), conf: map[string]int{}, procs: map[string]int{},
				dsts: map[string]int{}, errnos: map[string]int{}, next: format.Printable(d.NextStep)}
			groups[d.Rule] = g
		}
		g.n++
		g.conf[d.Confidence]++
		g.procs[format.Process(d.Comm, d.PID, d.OwnerKnown)]++
		if d.Dst.IsValid() {
			g.dsts[format.Addr(d.Dst)]++
		}
		if d.Errno != 0 {
			g.errnos[events.ErrnoName(d.Errno)]++
		}
	}
	order := func(r string) int {
		if i := slices.Index(Rules, r); i >= 0 {
			return i
		}
		return len(Rules)
	}
	gs := make([]*group, 0, len(groups))
	for _, g := range groups {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *group) int {
		return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(order(a.rule), order(b.rule)), strings.Compare(a.rule, b.rule))
	})
	var rows [][]string
	for _, g := range gs {
		rows = append(rows, []string{
			g.rule, strconv.Itoa(g.n), top(g.errnos, 3), top(g.procs, 3), top(g.dsts, 3),
			fmt.Sprintf("%d/%d/%d", g.conf[High], g.conf[Medium], g.conf[Low]),
		})
	}
	if _, err := fmt.Fprintf(w, "\nFailures by diagnosis (%d diagnosed)\n", len(ds)); err != nil {
		return err
	}
	t := format.Table(w, []string{"DIAGNOSIS", "FAILURES", "ERRNOS", "PROCESSES", "DESTINATIONS", "HIGH/MED/LOW"},
		[]bool{false, true, false, false, false, true})
	if err := t.Bulk(rows); err != nil {
		return err
	}
	if err := t.Render(); err != nil {
		return err
	}
	for _, g := range gs {
		if _, err := fmt.Fprintf(w, "%s (%s): %s\n", g.rule, g.name, g.next); err != nil {
			return err
		}
	}
	return nil
}

// top lists the n most frequent keys, with how many more there were.
func top(m map[string]int, n int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b)) })
	more := len(keys) - n
	if more > 0 {
		keys = keys[:n]
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k
		if m[k] > 1 {
			parts[i] += " (" + strconv.Itoa(m[k]) + ")"
		}
	}
	s := strings.Join(parts, ", ")
	if more > 0 {
		s += fmt.Sprintf(", +%d more", more)
	}
	return s
}
