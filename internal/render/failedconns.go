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

// A connection can fail without any send failing: the application's
// receive timed out or read a reset. The error report (or the reset
// before it) is then the only failure there is to show.

type connFailKey struct {
	errno int32
	reset bool // the error followed a reset received on the socket
	dst   netip.AddrPort
	pid   uint32
	comm  string
	known bool
}

// connFailures counts connections by how they ended, once each.
type connFailures struct {
	rows  map[connFailKey]uint64
	reset map[uint64]bool // cookie -> a reset was received, not yet reported
	ended map[uint64]bool // cookie -> counted
}

func (c *connFailures) observe(e *events.Event) {
	if e.Cookie == 0 || c.ended[e.Cookie] {
		return
	}
	if c.rows == nil {
		c.rows, c.reset, c.ended = map[connFailKey]uint64{}, map[uint64]bool{}, map[uint64]bool{}
	}
	switch e.Kind {
	case events.KindReceiveReset:
		c.reset[e.Cookie] = true
	case events.KindErrorReport:
		if e.Errno == 0 {
			return
		}
		k := connFailKey{errno: e.Errno, reset: c.reset[e.Cookie], dst: e.Dst, pid: e.PID, comm: e.Comm, known: e.OwnerKnown}
		c.rows[k]++
		c.ended[e.Cookie] = true
		delete(c.reset, e.Cookie)
	}
}

// byErrno returns "1 ECONNRESET, 3 ETIMEDOUT" and the total.
func (c *connFailures) byErrno() (string, uint64) {
	counts := map[int32]uint64{}
	var total uint64
	for k, n := range c.rows {
		counts[k.errno] += n
		total += n
	}
	errnos := make([]int32, 0, len(counts))
	for n := range counts {
		errnos = append(errnos, n)
	}
	slices.SortFunc(errnos, func(a, b int32) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), strings.Compare(events.ErrnoName(a), events.ErrnoName(b)))
	})
	parts := make([]string, 0, len(errnos))
	for _, n := range errnos {
		parts = append(parts, fmt.Sprintf("%d %s", counts[n], events.ErrnoName(n)))
	}
	return strings.Join(parts, ", "), total
}

func (s *Summary) renderConnFailures(p *printer) {
	type row struct {
		k connFailKey
		n uint64
	}
	rows := make([]row, 0, len(s.connFails.rows))
	for k, n := range s.connFails.rows {
		rows = append(rows, row{k, n})
	}
	if len(rows) == 0 {
		return
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(
			cmp.Compare(b.n, a.n),
			strings.Compare(events.ErrnoName(a.k.errno), events.ErrnoName(b.k.errno)),
			a.k.dst.Compare(b.k.dst),
			cmp.Compare(a.k.pid, b.k.pid),
		)
	})
	keep, more := s.limit(len(rows))
	cells := make([][]string, 0, keep)
	for _, r := range rows[:keep] {
		how := "error report"
		if r.k.reset {
			how = "reset received"
		}
		cells = append(cells, []string{
			errnoCell(r.k.errno), how, format.Addr(r.k.dst), format.Process(r.k.comm, r.k.pid, r.k.known), u(r.n),
		})
	}
	p.table("Failed connections by errno, destination and process (the error the socket reported; from events received)",
		[]string{"ERRNO", "ENDED BY", "DESTINATION", "COMM/PID", "CONNECTIONS"},
		[]bool{false, false, false, false, true}, cells, more)
}

// renderNoFailedSends opens a summary in which no send failed: with what
// did fail, when something did. The count comes from the kernel's error
// reports when it kept them (exact), else from the events received.
func (s *Summary) renderNoFailedSends(p *printer, totals *events.Totals, counted bool) {
	list, n := s.connFails.byErrno()
	if counted {
		var c connFailures
		for k, v := range totals.ByKey {
			if k.Kind == events.KindErrorReport && k.Errno != 0 && v.Count > 0 {
				if c.rows == nil {
					c.rows = map[connFailKey]uint64{}
				}
				c.rows[connFailKey{errno: k.Errno, pid: k.PID}] += v.Count
			}
		}
		list, n = c.byErrno()
	}
	if n > 0 {
		p.line("no send failed, but %s failed: %s (the error each socket reported; the application saw it on its next receive or send)", plural(n, "connection"), list)
		return
	}
	p.line("no failed sends were seen")
}

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return u(n) + " " + what + "s"
}
