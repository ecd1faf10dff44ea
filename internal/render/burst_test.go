package render

import (
	"bytes"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

// bulkLoss is what a bulk transfer under loss gives the text stream: conns
// connections retransmitting every millisecond for secs seconds, GSO
// skbs of 1 to 45 segments, of every data kind, a few failed.
func bulkLoss(conns, secs int) []events.Event {
	kinds := []events.RetransKind{events.RetransFast, events.RetransFast, events.RetransRTO, events.RetransTLP}
	var out []events.Event
	for ms := 0; ms < secs*1000; ms++ {
		for c := range conns {
			e := retransmit("198.18.0.2:5201")
			e.Time = t0.Add(time.Duration(ms) * time.Millisecond)
			e.Cookie = uint64(100 + c)
			e.Src = netip.AddrPortFrom(e.Src.Addr(), uint16(40000+c))
			e.RetransKind = kinds[(ms+c)%len(kinds)]
			e.Segs = uint32(1 + (ms*7+c)%45)
			if ms%97 == 0 {
				e.RetransErr, e.Segs = -16, 0 // EBUSY: not sent, not counted
			}
			out = append(out, e)
		}
	}
	return out
}

var (
	fullSegs  = regexp.MustCompile(` segs=(\d+) `)
	burstSegs = regexp.MustCompile(` (\d+) segments (?:\(([^)]*)\) )?in (\d+) retransmits`)
)

// lineSegs reads the segments and retransmits a text line stands for.
func lineSegs(t *testing.T, l string) (segs, n uint64, kinds string) {
	t.Helper()
	if m := burstSegs.FindStringSubmatch(l); m != nil {
		s, _ := strconv.ParseUint(m[1], 10, 64)
		n, _ := strconv.ParseUint(m[3], 10, 64)
		return s, n, m[2]
	}
	if m := fullSegs.FindStringSubmatch(l); m != nil {
		s, _ := strconv.ParseUint(m[1], 10, 64)
		return s, 1, ""
	}
	t.Fatalf("retransmit line without segments: %q", l)
	return 0, 0, ""
}

func TestTextSumsRetransmitsPerConnection(t *testing.T) {
	const conns, secs = 3, 5
	evs := bulkLoss(conns, secs)
	var out bytes.Buffer
	tx := NewText(&out)
	tx.SetLocation(time.UTC)
	var want events.RetransSegs
	for i := range evs {
		want.Observe(&evs[i])
		if err := tx.Event(&evs[i]); err != nil {
			t.Fatal(err)
		}
		if i == conns-1 {
			// The first retransmit of each connection is on the
			// screen at once, in full, before the second is over.
			tx.now = func() time.Time { return evs[i].Time }
			if err := tx.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(out.String(), " retransmit "); got != conns {
				t.Fatalf("after the first retransmit of %d connections, %d lines:\n%s", conns, got, out.String())
			}
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n")[1:] {
				if !strings.Contains(l, "rto=1.6s") {
					t.Errorf("the first retransmit is not shown in full: %q", l)
				}
			}
		}
	}
	if err := tx.End(nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")[1:]

	// One line a second per connection at most: 15,000 events, 15
	// seconds of connections, plus each connection's first line.
	if max := conns * (secs + 1); len(lines) > max {
		t.Errorf("%d lines for %d events; want at most %d", len(lines), len(evs), max)
	}
	var segs, n uint64
	perConn := map[string][]time.Time{}
	for _, l := range lines {
		s, k, _ := lineSegs(t, l)
		segs += s
		n += k
		at, err := time.Parse("15:04:05.000", l[:12])
		if err != nil {
			t.Fatal(err)
		}
		conn := strings.Fields(l)[4]
		perConn[conn] = append(perConn[conn], at)
	}
	// Nothing is lost in the sums: every segment and every event.
	if segs != want.Total() || n != uint64(len(evs)) {
		t.Errorf("lines stand for %d segments in %d retransmits; the events carry %d in %d", segs, n, want.Total(), len(evs))
	}
	if len(perConn) != conns {
		t.Errorf("lines for %d connections, want %d", len(perConn), conns)
	}
	for c, ts := range perConn {
		for i := 2; i < len(ts); i++ {
			if d := ts[i].Sub(ts[i-1]); d < BurstEvery-time.Millisecond {
				t.Errorf("connection %s: lines %v apart", c, d)
			}
		}
	}
	// A line names the kinds and the retransmits that were not sent.
	if !strings.Contains(lines[len(lines)-1], "(fast ") && !strings.Contains(lines[len(lines)-1], "(rto ") {
		t.Errorf("sum without kinds: %q", lines[len(lines)-1])
	}
	if !strings.Contains(out.String(), "not sent: EBUSY ") {
		t.Errorf("no line says retransmits were not sent:\n%s", out.String())
	}
	t.Logf("%d events -> %d lines; last: %s", len(evs), len(lines), lines[len(lines)-1])
}

// The sum of a connection prints before the connection's next other
// event, and a quiet stream's flush prints a second that is over.
func TestTextSumsInOrder(t *testing.T) {
	var out bytes.Buffer
	tx := NewText(&out)
	tx.SetLocation(time.UTC)
	evs := bulkLoss(1, 1)[:300]
	for i := range evs {
		if err := tx.Event(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Quiet, before the second is over: nothing more yet.
	tx.now = func() time.Time { return evs[len(evs)-1].Time.Add(100 * time.Millisecond) }
	tx.Flush()
	if got := strings.Count(out.String(), "\n"); got != 2 {
		t.Fatalf("%d lines before the second was over:\n%s", got, out.String())
	}
	// The second is over: the flush prints the sum of the other 299.
	tx.now = func() time.Time { return t0.Add(BurstEvery) }
	tx.Flush()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], " in 299 retransmits over ") {
		t.Fatalf("after the second:\n%s", out.String())
	}

	// More retransmits, then the error report: the sum comes first.
	more := bulkLoss(1, 2)[1200:1300]
	for i := range more {
		tx.Event(&more[i])
	}
	er := errorReport(1, events.ETIMEDOUT, "198.18.0.2:5201")
	er.Cookie, er.Time, er.State = 100, more[len(more)-1].Time, events.StateClose
	tx.Event(&er)
	tx.End(nil)
	lines = strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	last := lines[len(lines)-2:]
	if !strings.Contains(last[0], " retransmits over ") || !strings.Contains(last[1], "error_report") {
		t.Errorf("the sum does not come before the error report:\n%s", strings.Join(lines, "\n"))
	}
	if len(tx.bursts.m) != 0 {
		t.Errorf("%d connections kept after the close", len(tx.bursts.m))
	}
}

// JSON keeps every event: only the text is summed.
func TestJSONKeepsEveryRetransmit(t *testing.T) {
	var out bytes.Buffer
	j := NewJSON(&out)
	evs := bulkLoss(2, 1)
	for i := range evs {
		if err := j.Event(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	j.End(nil)
	if got := strings.Count(out.String(), "\n"); got != len(evs) {
		t.Errorf("JSON wrote %d lines for %d events", got, len(evs))
	}
}

// Drops are summed the same way, by reason.
func TestTextSumsDrops(t *testing.T) {
	var out bytes.Buffer
	tx := NewText(&out)
	tx.SetLocation(time.UTC)
	for i := range 500 {
		d := events.Event{
			Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: events.KindDrop, PID: 4242, Comm: "curl", OwnerKnown: true,
			Cookie: 7, Family: events.AFInet, Protocol: events.ProtoTCP,
			Src: netip.MustParseAddrPort("10.0.0.1:43210"), Dst: netip.MustParseAddrPort("198.18.0.2:443"),
			State: events.StateEstablished, Bytes: 100, Segs: 1, SinceSend: -1, SinceRecv: -1,
			DropReason: "NETFILTER_DROP", DropDir: events.DropOut,
		}
		if i%5 == 0 {
			d.DropReason = "QDISC_DROP"
		}
		tx.Event(&d)
	}
	tx.End(nil)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "49900 499 drops (NETFILTER_DROP 400, QDISC_DROP 99), 499 segments over 499ms") {
		t.Errorf("drops:\n%s", out.String())
	}
}
