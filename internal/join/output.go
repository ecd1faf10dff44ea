package join

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

// WriteText writes the "Both ends" section. Paths, host names and every
// text that holds a recording's strings go through format.Printable.
func WriteText(w io.Writer, r *Result) error {
	p := format.Printable
	var b strings.Builder
	b.WriteString("Both ends\n")
	for _, rec := range r.Recordings {
		fmt.Fprintf(&b, "  %s: host %s, netns %d, %s to %s (%s), %s\n", p(rec.Path), p(rec.Host), rec.Netns,
			Stamp(rec.Start), Stamp(rec.End), format.Duration(rec.End.Sub(rec.Start)), plural(len(rec.Ends), "handshake"))
		if !rec.Footer {
			b.WriteString("    no footer: the recorder did not stop cleanly; it ends at its last event\n")
		}
		if rec.OwnersLimited != "" {
			b.WriteString("    warning: " + p(rec.OwnersLimited) + "\n")
		}
	}
	for _, o := range r.Overlaps {
		if !o.OK {
			fmt.Fprintf(&b, "  %s and %s do not overlap in time (by each host's clock): nothing of theirs can be joined\n", p(o.A.Path), p(o.B.Path))
		} else {
			fmt.Fprintf(&b, "  %s and %s overlap for %s, %s to %s", p(o.A.Path), p(o.B.Path), format.Duration(o.End.Sub(o.Start)), Stamp(o.Start), Stamp(o.End))
			if t := o.CorrectedText(); t != "" {
				b.WriteString(" " + p(t))
			}
			b.WriteString("\n")
		}
		if t := o.OutsideText(); t != "" {
			b.WriteString("    " + p(t) + "\n")
		}
	}
	for _, o := range r.Offsets {
		fmt.Fprintf(&b, "  clock offset: %s\n", p(o.Text()))
	}
	failed := 0
	for _, c := range r.Joined {
		if c.Failed {
			failed++
		}
	}
	fmt.Fprintf(&b, "  %s joined by their ISNs, %d of them failed; %d seen at one end only; %d ambiguous\n",
		plural(len(r.Joined), "connection"), failed, len(r.OneEnd), len(r.Ambiguous))
	for _, c := range r.Joined {
		if !c.Failed {
			continue
		}
		b.WriteString("\n")
		for i, e := range c.Ends {
			fmt.Fprintf(&b, "  %-6s %s %s%s cookie %d: %s -> %s, ESTABLISHED %s", e.Role(), p(e.Rec.Host),
				format.Process(e.First().Comm, e.First().PID, e.First().OwnerKnown), workloadText(e.First().Workload), e.Cookie,
				format.Addr(e.First().Src), format.Addr(e.First().Dst), Stamp(e.Established))
			if r := c.Rule(i); r != "" {
				fmt.Fprintf(&b, ", diagnosis %s", p(r))
			}
			switch {
			case c.Idle[i] >= 0 && c.IdleAtMost[i]:
				fmt.Fprintf(&b, ", idle at most %s at the failure (no later event of its socket to narrow it)", format.Duration(c.Idle[i]))
			case c.Idle[i] >= 0:
				fmt.Fprintf(&b, ", idle %s at the failure", format.Duration(c.Idle[i]))
			}
			if d := c.Drops[i]; d.In+d.Out > 0 {
				b.WriteString(", " + p(d.Text()))
			}
			b.WriteString("\n")
		}
		if c.ResetOrigin != "" {
			fmt.Fprintf(&b, "    reset by: %s: %s\n", c.ResetOrigin, p(c.ResetEvidence))
		}
		if c.DataStopped != "" {
			fmt.Fprintf(&b, "    data: %s\n", p(c.DataStopped))
		}
		fmt.Fprintf(&b, "    => %s\n", p(c.Diagnosis))
	}
	if len(r.Ambiguous) > 0 {
		b.WriteString("\n  Not joined, ambiguous (the ISNs match more than one socket at the other end):\n")
		for _, a := range r.Ambiguous {
			var cs []string
			for _, c := range a.Candidates {
				cs = append(cs, fmt.Sprintf("%s cookie %d", p(c.Rec.Path), c.Cookie))
			}
			fmt.Fprintf(&b, "  %s cookie %d: %s\n", p(a.End.Rec.Path), a.End.Cookie, strings.Join(cs, ", "))
		}
	}
	if len(r.OneEnd) > 0 {
		b.WriteString("\n  Seen at one end only (no socket with the same ISNs in the other recordings: " + p(OneEndWhy(r)) + "):\n")
		for _, e := range r.OneEnd {
			fmt.Fprintf(&b, "  %-6s %s %s cookie %d: %s -> %s, ESTABLISHED %s\n", e.Role(), p(e.Rec.Path),
				format.Process(e.First().Comm, e.First().PID, e.First().OwnerKnown), e.Cookie,
				format.Addr(e.First().Src), format.Addr(e.First().Dst), Stamp(e.Established))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// workloadText names a container's or unit's workload; a plain process
// is already named.
func workloadText(w *events.Workload) string {
	if w == nil || w.Kind == events.WorkloadProcess {
		return ""
	}
	return " workload=" + format.Printable(w.String())
}

// CorrectedText says how B's clock was corrected before the overlap was
// taken; "" when it was not.
func (o Overlap) CorrectedText() string {
	if o.Offset == 0 {
		return ""
	}
	return fmt.Sprintf("by %s's clock, %s's corrected by %s", o.A.Path, o.B.Path, signedOffset(o.Offset))
}

// OutsideText names the handshakes that matched outside the overlap; ""
// when none did.
func (o Overlap) OutsideText() string {
	if o.Outside == 0 {
		return ""
	}
	return fmt.Sprintf("yet the ISNs of %s match one socket each way outside that overlap, as if %s's clock were %s %s's: not joined; if the hosts' clocks differ that much, recordings that share two connections or more are aligned by them",
		plural(o.Outside, "handshake"), o.B.Path, signed(o.OutsideOffset), o.A.Path)
}

// Text says what an end's host dropped of its socket's packets.
func (d LocalDrops) Text() string {
	return fmt.Sprintf("its host dropped %d of its packets (%d in, %d out; %s)", d.In+d.Out, d.In, d.Out, d.Where)
}

// Text says the offset and how far it can be trusted.
func (o Offset) Text() string {
	s := fmt.Sprintf("%s's clock is %s %s's", o.B.Path, signed(o.Estimate), o.A.Path)
	if o.Inconsistent {
		return s + fmt.Sprintf(" (median of %d handshakes whose bounds disagree: a clock stepped or drifts)", o.Pairs)
	}
	return s + fmt.Sprintf(" ± %s (from %s; the upper bound is firm, the lower one assumes the client's ACK took no longer than the handshake's round trip)", format.Duration(o.Within), plural(o.Pairs, "handshake"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func signedOffset(d time.Duration) string {
	if d < 0 {
		return "+" + format.Duration(-d)
	}
	return "-" + format.Duration(d)
}

func signed(d time.Duration) string {
	if d < 0 {
		return format.Duration(-d) + " behind"
	}
	return format.Duration(d) + " ahead of"
}

type jsonEnd struct {
	Role        string         `json:"role"`
	Recording   string         `json:"recording"`
	Host        string         `json:"host"`
	Netns       uint64         `json:"netns,omitempty"`
	PID         uint32         `json:"pid"`
	Comm        string         `json:"comm"`
	Workload    string         `json:"workload,omitempty"`
	Cookie      uint64         `json:"cookie"`
	Src         netip.AddrPort `json:"src"`
	Dst         netip.AddrPort `json:"dst"`
	SndISN      uint32         `json:"snd_isn"`
	RcvISN      uint32         `json:"rcv_isn"`
	Established time.Time      `json:"established"`
	Diagnosis   string         `json:"diagnosis,omitempty"`
	IdleMs      *float64       `json:"idle_ms,omitempty"`
	IdleAtMost  bool           `json:"idle_at_most,omitempty"`
	LocalDrops  *jsonDrops     `json:"local_drops,omitempty"`
}

// jsonDrops is what an end's own host dropped of its socket's packets.
type jsonDrops struct {
	In    int    `json:"in"`
	Out   int    `json:"out"`
	Where string `json:"where"`
}

type jsonConn struct {
	Ends          [2]jsonEnd `json:"ends"`
	Failed        bool       `json:"failed"`
	ResetOrigin   string     `json:"reset_origin,omitempty"`
	ResetReason   string     `json:"reset_reason,omitempty"`
	ResetEvidence string     `json:"reset_evidence,omitempty"`
	DataStopped   string     `json:"data_stopped,omitempty"`
	DataReached   *bool      `json:"data_reached_peer,omitempty"`
	Diagnosis     string     `json:"diagnosis,omitempty"`
}

type jsonRecording struct {
	Path  string    `json:"path"`
	Host  string    `json:"host"`
	Netns uint64    `json:"netns,omitempty"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

type jsonOverlap struct {
	Pair            [2]string `json:"recordings"`
	Overlaps        bool      `json:"overlaps"`
	Start           time.Time `json:"start,omitzero"`
	End             time.Time `json:"end,omitzero"`
	CorrectedMs     float64   `json:"corrected_ms,omitempty"`
	Outside         int       `json:"isn_matches_outside,omitempty"`
	OutsideOffsetMs float64   `json:"isn_matches_outside_offset_ms,omitempty"`
}

type jsonOffset struct {
	Pair         [2]string `json:"recordings"` // second's clock minus first's
	OffsetMs     float64   `json:"offset_ms"`
	WithinMs     float64   `json:"within_ms"`
	Handshakes   int       `json:"handshakes"`
	Inconsistent bool      `json:"inconsistent,omitempty"`
}

type jsonResult struct {
	Recordings []jsonRecording `json:"recordings"`
	Overlaps   []jsonOverlap   `json:"overlaps"`
	Offsets    []jsonOffset    `json:"clock_offsets"`
	Joined     []jsonConn      `json:"joined"`
	OneEnd     []jsonEnd       `json:"one_end_only"`
	Ambiguous  []jsonAmbiguous `json:"ambiguous"`
}

type jsonAmbiguous struct {
	End        jsonEnd   `json:"end"`
	Candidates []jsonEnd `json:"candidates"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (c *Conn) endJSON(i int) jsonEnd {
	j := endJSON(c.Ends[i], c.Idle[i], c.Failed)
	j.Diagnosis = c.Rule(i)
	j.IdleAtMost = c.Failed && c.Idle[i] >= 0 && c.IdleAtMost[i]
	if d := c.Drops[i]; d.In+d.Out > 0 {
		j.LocalDrops = &jsonDrops{d.In, d.Out, d.Where}
	}
	return j
}

func endJSON(e *End, idle time.Duration, withIdle bool) jsonEnd {
	f := e.First()
	j := jsonEnd{Role: e.Role(), Recording: e.Rec.Path, Host: e.Rec.Host, Netns: e.Rec.Netns, PID: f.PID,
		Comm: f.Comm, Workload: f.Workload.String(), Cookie: e.Cookie, Src: f.Src, Dst: f.Dst, SndISN: e.SndISN, RcvISN: e.RcvISN, Established: e.Established}
	if len(e.Diagnoses) > 0 {
		j.Diagnosis = e.Diagnoses[0].Rule
	}
	if withIdle && idle >= 0 {
		v := ms(idle)
		j.IdleMs = &v
	}
	return j
}

// WriteJSON writes the result as one JSON object.
func WriteJSON(w io.Writer, r *Result) error {
	out := jsonResult{Recordings: []jsonRecording{}, Overlaps: []jsonOverlap{}, Offsets: []jsonOffset{},
		Joined: []jsonConn{}, OneEnd: []jsonEnd{}, Ambiguous: []jsonAmbiguous{}}
	for _, rec := range r.Recordings {
		out.Recordings = append(out.Recordings, jsonRecording{rec.Path, rec.Host, rec.Netns, rec.Start, rec.End})
	}
	for _, o := range r.Overlaps {
		j := jsonOverlap{Pair: [2]string{o.A.Path, o.B.Path}, Overlaps: o.OK, CorrectedMs: ms(o.Offset)}
		if o.OK {
			j.Start, j.End = o.Start, o.End
		}
		if o.Outside > 0 {
			j.Outside, j.OutsideOffsetMs = o.Outside, ms(o.OutsideOffset)
		}
		out.Overlaps = append(out.Overlaps, j)
	}
	for _, o := range r.Offsets {
		out.Offsets = append(out.Offsets, jsonOffset{[2]string{o.A.Path, o.B.Path}, ms(o.Estimate), ms(o.Within), o.Pairs, o.Inconsistent})
	}
	for _, c := range r.Joined {
		j := jsonConn{Failed: c.Failed, ResetOrigin: c.ResetOrigin, ResetReason: c.ResetReason, ResetEvidence: c.ResetEvidence,
			DataStopped: c.DataStopped, DataReached: c.Reached, Diagnosis: c.Diagnosis}
		for i := range c.Ends {
			j.Ends[i] = c.endJSON(i)
		}
		out.Joined = append(out.Joined, j)
	}
	for _, e := range r.OneEnd {
		out.OneEnd = append(out.OneEnd, endJSON(e, 0, false))
	}
	for _, a := range r.Ambiguous {
		j := jsonAmbiguous{End: endJSON(a.End, 0, false)}
		for _, c := range a.Candidates {
			j.Candidates = append(j.Candidates, endJSON(c, 0, false))
		}
		out.Ambiguous = append(out.Ambiguous, j)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := w.Write(events.EscapeJSONControls(b.Bytes()))
	return err
}

// OneEndWhy says why a handshake may have no other end: the other end
// was not recorded or was filtered out, or a recording's owners were
// limited (Recording.OwnersLimited).
func OneEndWhy(r *Result) string {
	var limited []string
	for _, rec := range r.Recordings {
		if rec.OwnersLimited != "" {
			limited = append(limited, rec.Path)
		}
	}
	if len(limited) == 0 {
		return "the other end was not recorded, or was filtered out"
	}
	return "the other end was not recorded or was filtered out, or was missed by " + strings.Join(limited, " and ") +
		", whose owner-seed layer was degraded"
}
