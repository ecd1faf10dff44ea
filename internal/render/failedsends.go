package render

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

// sendRow is one (errno, process) line of the failed-sends table: the
// kernel's exact count when it kept one, and what the reader received,
// with the destinations of the received events (the kernel's totals do
// not key on the destination).
type sendRow struct {
	errno    int32
	pid      uint32
	comm     string
	known    bool
	count    uint64
	bytes    uint64
	received uint64
	dsts     map[netip.AddrPort]uint64
}

// sendRows joins the kernel's totals (when counted) with the received
// failures.
func (s *Summary) sendRows(totals *events.Totals) (rows []*sendRow, exact bool, kernel uint64) {
	type key struct {
		errno int32
		pid   uint32
	}
	byKey := map[key]*sendRow{}
	get := func(errno int32, pid uint32) *sendRow {
		r := byKey[key{errno, pid}]
		if r == nil {
			r = &sendRow{errno: errno, pid: pid, comm: s.comms[pid], known: s.comms[pid] != "", dsts: map[netip.AddrPort]uint64{}}
			byKey[key{errno, pid}] = r
		}
		return r
	}
	exact = totals != nil && len(totals.ByKey) > 0
	if exact {
		for k, v := range totals.ByKey {
			if k.Kind == events.KindSendError && v.Count > 0 {
				// The kernel keys its totals by destination too.
				r := get(k.Errno, k.PID)
				r.count += v.Count
				r.bytes += v.Bytes
				kernel += v.Count
			}
		}
	}
	for k, v := range s.sends {
		r := get(k.errno, k.pid)
		if r.comm == "" || k.known {
			r.comm, r.known = k.comm, k.known
		}
		r.received += v.count
		r.dsts[k.dst] += v.count
		if !exact {
			r.count += v.count
			r.bytes += v.bytes
		}
	}
	for _, r := range byKey {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b *sendRow) int {
		return cmp.Or(
			cmp.Compare(b.count, a.count),
			cmp.Compare(a.errno, b.errno),
			cmp.Compare(a.pid, b.pid),
		)
	})
	return rows, exact, kernel
}

// maxDsts bounds the destinations listed in one row.
const maxDsts = 3

func dstsCell(m map[netip.AddrPort]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	dsts := make([]netip.AddrPort, 0, len(m))
	for d := range m {
		dsts = append(dsts, d)
	}
	slices.SortFunc(dsts, func(a, b netip.AddrPort) int { return cmp.Or(cmp.Compare(m[b], m[a]), a.Compare(b)) })
	var parts []string
	for _, d := range dsts[:min(len(dsts), maxDsts)] {
		parts = append(parts, fmt.Sprintf("%s (%d)", format.Addr(d), m[d]))
	}
	if len(dsts) > maxDsts {
		parts = append(parts, fmt.Sprintf("+%d more", len(dsts)-maxDsts))
	}
	return strings.Join(parts, ", ")
}

func (s *Summary) renderSends(p *printer, totals *events.Totals) {
	rows, exact, kernel := s.sendRows(totals)
	keep, more := s.limit(len(rows))
	cells := make([][]string, 0, keep)
	for _, r := range rows[:keep] {
		cells = append(cells, []string{errnoCell(r.errno), format.Process(r.comm, r.pid, r.known), u(r.count), u(r.bytes), u(r.received), dstsCell(r.dsts)})
	}
	title := fmt.Sprintf("Failed sends by errno and process (kernel counted %d, exact; %d received)", kernel, s.sendErrors)
	if !exact {
		title = fmt.Sprintf("Failed sends by errno and process (%d received; the kernel's totals are not available)", s.sendErrors)
	}
	p.table(title,
		[]string{"ERRNO", "COMM/PID", "COUNT", "BYTES", "RECEIVED", "DESTINATIONS (RECEIVED)"},
		[]bool{false, false, true, true, true, false}, cells, more)
}
