package render

import (
	"cmp"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

// numKinds bounds the per-kind arrays; kinds beyond it are counted as
// unknown rather than dropped, so totals still add up.
const numKinds = int(events.KindDrop) + 1

type sendKey struct {
	errno int32
	dst   netip.AddrPort
	pid   uint32
	comm  string
	known bool
}

type countBytes struct {
	count, bytes uint64
}

// Summary accumulates what the stream showed and, at the end, draws the
// tables an on-call engineer reads first.
type Summary struct {
	// MaxRows limits each table except the kernel totals; 0 means all.
	// Cut tables say how many rows were left out.
	MaxRows int

	observed   [numKinds]uint64
	sends      map[sendKey]*countBytes
	dests      events.Dests
	sizes      [34]uint64 // [0]: 0 bytes; [i]: 2^(i-1) .. 2^i-1
	byKey      map[events.TotalsKey]uint64
	comms      map[uint32]string
	sendErrors uint64
	connFails  connFailures
}

// NewSummary returns a Summary showing at most 20 rows per table.
func NewSummary() *Summary {
	return &Summary{MaxRows: 20}
}

func kindIndex(k events.Kind) int {
	if int(k) < numKinds {
		return int(k)
	}
	return int(events.KindUnknown)
}

// Observe records one event. It keeps nothing that refers to e.
func (s *Summary) Observe(e *events.Event) {
	if s.sends == nil {
		s.sends = make(map[sendKey]*countBytes)
		s.byKey = make(map[events.TotalsKey]uint64)
		s.comms = make(map[uint32]string)
	}
	s.observed[kindIndex(e.Kind)]++
	s.byKey[tableKey(events.TotalsKeyOf(e))]++
	if e.OwnerKnown && e.Comm != "" {
		s.comms[e.PID] = e.Comm
	}

	s.connFails.observe(e)
	switch e.Kind {
	case events.KindSendError:
		s.sendErrors++
		k := sendKey{errno: e.Errno, dst: e.Dst, pid: e.PID, comm: e.Comm, known: e.OwnerKnown}
		c := s.sends[k]
		if c == nil {
			c = new(countBytes)
			s.sends[k] = c
		}
		c.count++
		c.bytes += uint64(e.Bytes)
		s.sizes[sizeBucket(e.Bytes)]++
	case events.KindRetransmit, events.KindReceiveReset, events.KindSendReset, events.KindErrorReport:
		s.dests.Observe(e)
	}
}

func sizeBucket(n uint32) int { return bits.Len32(n) }

func bucketLabel(i int) string {
	switch i {
	case 0:
		return "0"
	case 1:
		return "1"
	}
	lo := uint64(1) << (i - 1)
	return u(lo) + " - " + u(2*lo-1)
}

// Render writes the summary. totals may be nil when the kernel's counts
// are not available (a replayed recording without them); the sections
// that need them are then left out.
func (s *Summary) Render(w io.Writer, totals *events.Totals) error {
	p := &printer{w: w}
	var seen uint64
	for _, n := range s.observed {
		seen += n
	}
	lost := totals != nil && totals.LostKernel+totals.LostUser > 0
	counted := totals != nil && len(totals.ByKey) > 0

	sendErrors := s.sendErrors
	if counted {
		sendErrors = totals.Sum(events.KindSendError)
	}
	if sendErrors == 0 {
		s.renderNoFailedSends(p, totals, counted)
		if seen == 0 && !lost && !counted {
			return p.err
		}
	} else {
		s.renderSends(p, totals)
		s.renderSizes(p)
	}
	s.renderConnFailures(p)
	s.renderConns(p, totals)
	if totals != nil {
		s.renderTotals(p, totals)
		s.renderCompleteness(p, totals)
	} else if seen > 0 {
		p.section()
		p.line("kernel totals unavailable: %d events received, completeness unknown", seen)
	}
	return p.err
}

// printer keeps the first write error, so rendering code stays linear.
type printer struct {
	w       io.Writer
	err     error
	started bool
}

func (p *printer) line(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
	p.started = true
}

// section separates blocks with one blank line.
func (p *printer) section() {
	if p.started && p.err == nil {
		_, p.err = io.WriteString(p.w, "\n")
	}
}

// table draws one ASCII table (portable to any terminal, log or ticket).
// right marks the numeric columns.
func (p *printer) table(title string, header []string, right []bool, rows [][]string, more int) {
	if p.err != nil {
		return
	}
	p.section()
	p.line("%s", title)
	t := format.Table(p.w, header, right)
	if err := t.Bulk(rows); err != nil {
		p.err = err
		return
	}
	if err := t.Render(); err != nil {
		p.err = err
		return
	}
	if more > 0 {
		p.line("... %d more rows", more)
	}
}

func (s *Summary) limit(n int) (keep, more int) {
	if s.MaxRows > 0 && n > s.MaxRows {
		return s.MaxRows, n - s.MaxRows
	}
	return n, 0
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func errnoCell(n int32) string {
	if n == 0 {
		return "-"
	}
	return events.ErrnoString(n)
}

func (s *Summary) renderSizes(p *printer) {
	lo, hi := -1, -1
	var top uint64
	for i, n := range s.sizes {
		if n == 0 {
			continue
		}
		if lo < 0 {
			lo = i
		}
		hi = i
		top = max(top, n)
	}
	if lo < 0 {
		return
	}
	const barWidth = 40
	var cells [][]string
	for i := lo; i <= hi; i++ {
		n := s.sizes[i]
		bar := int((n*barWidth + top - 1) / top) // round up: any count shows
		cells = append(cells, []string{bucketLabel(i), u(n), strings.Repeat("#", bar)})
	}
	p.table(fmt.Sprintf("Failed send sizes (bytes requested, of the %d received)", s.sendErrors),
		[]string{"BYTES", "COUNT", "DISTRIBUTION"}, []bool{true, true, false}, cells, 0)
}

func (s *Summary) renderConns(p *printer, totals *events.Totals) {
	s.dests.ApplyTotals(totals)
	total := func(d *events.Dest) uint64 { return d.Retrans.Total() + d.Resets() + d.ErrorReports }
	var rows []*events.Dest
	for _, d := range s.dests.Sorted() {
		// The totals name destinations that only failed sends, which
		// this table does not show.
		if total(d)+d.Retransmits > 0 {
			rows = append(rows, d)
		}
	}
	if len(rows) == 0 {
		return
	}
	slices.SortStableFunc(rows, func(a, b *events.Dest) int { return cmp.Compare(total(b), total(a)) })
	keep, more := s.limit(len(rows))
	cells := make([][]string, 0, keep)
	exact, segsExact := false, false
	for _, d := range rows[:keep] {
		exact = exact || d.Exact
		segsExact = segsExact || d.RetransExact
		cells = append(cells, []string{
			format.Addr(d.Dst), u(d.Retrans.Total()), d.Retrans.Kinds(), u(d.Retransmits), u(d.RetransBytes),
			format.Counted(d.ResetsRecv, d.Received.ResetsRecv),
			format.Counted(d.ResetsSent, d.Received.ResetsSent),
			format.Counted(d.ErrorReports, d.Received.ErrorReports),
		})
	}
	p.table(destsTitle(exact, segsExact),
		[]string{"DESTINATION", "RETRANS SEGS", "KINDS (SEGS)", "RETRANS EVENTS", "RETRANS BYTES", "RESETS RECEIVED", "RESETS SENT", "ERROR REPORTS"},
		[]bool{false, true, false, true, true, true, true, true}, cells, more)
}

// destsTitle says which columns of the destinations table are the
// kernel's exact totals and which count the events received.
func destsTitle(exact, segsExact bool) string {
	const t = "Retransmits, resets and error reports by destination"
	switch {
	case exact:
		return t + " (" + format.ExactNote(true) + "; retransmit events and bytes as received)"
	case segsExact:
		return t + " (segments from the kernel's totals, exact; the rest from the events received)"
	}
	return t + " (" + format.ExactNote(false) + ")"
}

func (s *Summary) renderTotals(p *printer, t *events.Totals) {
	type row struct {
		k events.TotalsKey
		v events.TotalsValue
	}
	byKey := map[events.TotalsKey]events.TotalsValue{}
	for k, v := range t.ByKey {
		k = tableKey(k)
		sum := byKey[k]
		sum.Count += v.Count
		sum.Bytes += v.Bytes
		sum.Segs += v.Segs
		byKey[k] = sum
	}
	rows := make([]row, 0, len(byKey))
	for k, v := range byKey {
		if v.Count == 0 && v.Bytes == 0 && v.Segs == 0 {
			continue
		}
		rows = append(rows, row{k, v})
	}
	if len(rows) == 0 {
		return
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(
			cmp.Compare(b.v.Count, a.v.Count),
			cmp.Compare(a.k.PID, b.k.PID),
			cmp.Compare(a.k.Kind, b.k.Kind),
			cmp.Compare(a.k.Errno, b.k.Errno),
			cmp.Compare(a.k.Detail, b.k.Detail),
		)
	})
	// Exact numbers are the point of this table, so it is never cut.
	cells := make([][]string, 0, len(rows))
	for _, r := range rows {
		proc := "?"
		if r.k.PID != 0 {
			proc = format.Process(s.comms[r.k.PID], r.k.PID, true)
		}
		kind := r.k.Kind.String()
		if r.k.Detail != "" {
			kind += "/" + format.Printable(r.k.Detail)
		}
		segs := "-"
		if r.v.Segs != 0 {
			segs = u(r.v.Segs)
		}
		cells = append(cells, []string{
			proc, kind, errnoCell(r.k.Errno),
			u(r.v.Count), segs, u(r.v.Bytes), u(s.byKey[r.k]),
		})
	}
	// SEGS is the unit of the kernel's own retransmit counter
	// (TcpRetransSegs); EVENTS counts events, and untraced segments had
	// none.
	p.table("Kernel totals by process, kind and errno (exact, even when events were lost)",
		[]string{"COMM/PID", "KIND", "ERRNO", "EVENTS", "SEGS", "BYTES", "RECEIVED"},
		[]bool{false, false, false, true, true, true, true}, cells, 0)
}

// tableKey is the grain of the kernel totals table: process, kind,
// errno and detail, all destinations together.
func tableKey(k events.TotalsKey) events.TotalsKey {
	k.Dst = netip.AddrPort{}
	return k
}

// renderCompleteness compares what arrived with what the kernel counted.
// Only kinds the kernel counts at all take part, so a kind it does not
// keep totals for cannot make a complete stream look incomplete.
func (s *Summary) renderCompleteness(p *printer, t *events.Totals) {
	var counted [numKinds]uint64
	var has [numKinds]bool
	for k, v := range t.ByKey {
		i := kindIndex(k.Kind)
		counted[i] += v.Count
		has[i] = true
	}
	// Drops held back by the per-socket rate limit were counted, not
	// lost: the stream is complete without them.
	counted[kindIndex(events.KindDrop)] -= min(t.Unstreamed, counted[kindIndex(events.KindDrop)])
	var recv, kern uint64
	short, anyCounted := false, false
	var cells [][]string
	for i := range numKinds {
		if !has[i] {
			continue
		}
		anyCounted = true
		recv += s.observed[i]
		kern += counted[i]
		if s.observed[i] != counted[i] {
			short = true
		}
		cells = append(cells, []string{
			events.Kind(i).String(), u(s.observed[i]), u(counted[i]), diff(counted[i], s.observed[i]),
		})
	}
	lost := t.LostKernel + t.LostUser

	p.section()
	if lost > 0 {
		p.line("lost events: %d (kernel ring buffer full: %d, userspace: %d)", lost, t.LostKernel, t.LostUser)
	}
	if t.Unstreamed > 0 {
		p.line("drop events counted but not streamed (rate limit per socket): %d; the kernel totals include them", t.Unstreamed)
	}
	if t.OwnersByProc > 0 {
		p.line("events attributed by /proc lookup (the kernel had no owner for their sockets): %d", t.OwnersByProc)
	}
	if t.OwnersUnresolved > 0 {
		p.line("events lost before their owner was looked up: %d; the kernel counted them, under no process", t.OwnersUnresolved)
	}
	if t.Uncounted > 0 {
		p.line("kernel totals inexact: %d events found no room in the totals map (more than 16,384 process/kind/errno keys)", t.Uncounted)
	}
	var seen uint64
	for _, n := range s.observed {
		seen += n
	}
	switch {
	case !anyCounted && lost == 0 && seen > 0:
		p.line("kernel counted none of the %d events received: completeness unknown", seen)
		return
	case !short && lost == 0:
		p.line("stream complete: %d events received, kernel counted %d", recv, kern)
		return
	case recv > kern && lost == 0:
		p.line("stream inconsistent: %d events received, kernel counted only %d", recv, kern)
	default:
		p.line("stream incomplete: %d events received, kernel counted %d, %d lost", recv, kern, lost)
	}
	if short {
		p.table("Received and counted by kind",
			[]string{"KIND", "RECEIVED", "KERNEL COUNTED", "MISSING"},
			[]bool{false, true, true, true}, cells, 0)
	}
}

func diff(counted, recv uint64) string {
	if counted >= recv {
		return u(counted - recv)
	}
	return "-" + u(recv-counted)
}
