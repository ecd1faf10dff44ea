package report

import (
	"bytes"
	"maps"
	"net/netip"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"
)

// Retransmits are counted in segments: a destination's and a process's
// are the kernel's totals, untraced segments included, so they add up to
// TcpRetransSegs where the events do not; a connection's and a time
// bucket's are its events' segments.
func TestRetransmitsInSegments(t *testing.T) {
	evs := conns(2, 3) // 6 RTO retransmits of one segment each
	evs[0].Segs, evs[0].RetransKind = 10, events.RetransFast
	untraced := events.TotalsKey{PID: 7, Kind: events.KindRetransmit, Dst: netip.MustParseAddrPort("198.18.0.2:9000"), Detail: "untraced"}
	path := writeRec(t, "r.jsonl", recOpts{footer: true, totals: map[events.TotalsKey]events.TotalsValue{untraced: {Segs: 4}}}, evs)
	rec, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(rec, BuildOptions{})
	wantKinds := map[string]uint64{"fast": 10, "rto": 5, "untraced": 4}
	if len(rep.Destinations) != 1 || rep.Destinations[0].RetransSegs != 19 || !rep.Destinations[0].RetransExact ||
		rep.Destinations[0].RetransEvents != 6 || !maps.Equal(rep.Destinations[0].RetransKinds, wantKinds) {
		t.Errorf("destinations %+v, want 19 segments (fast 10, rto 5, untraced 4) in 6 events, exact", rep.Destinations)
	}
	if len(rep.Processes) != 1 || rep.Processes[0].RetransSegs != 19 || !maps.Equal(rep.Processes[0].RetransKinds, wantKinds) {
		t.Errorf("processes %+v, want 19 segments", rep.Processes)
	}
	var conn uint64
	for _, c := range rep.FailedConns {
		conn += c.RetransSegs
	}
	if len(rep.FailedConns) != 2 || rep.FailedConns[0].RetransSegs != 12 || conn != 15 {
		t.Errorf("failed connections %+v, want 12 and 3 segments: the events'", rep.FailedConns)
	}
	var buckets uint64
	for _, b := range rep.Buckets.Rows {
		buckets += b.RetransSegs
	}
	if buckets != 15 || rec.RetransSegs() != 19 {
		t.Errorf("buckets hold %d segments (want the events' 15), the recording %d (want the kernel's 19)", buckets, rec.RetransSegs())
	}
	if got := rec.Footer.RetransSegsByKind; !maps.Equal(got, wantKinds) {
		t.Errorf("footer retrans_segs_by_kind %v, want %v", got, wantKinds)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, rec, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RETRANS SEGS", "rto 5, fast 10, untraced 4", "kernel's totals, exact"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, buf.String())
		}
	}
}
