package record

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
)

// A destination whose every send failed had no successful send, which
// the kernel counted: its footer entry says 0 sends and 0 bytes, not
// "not counted". A socket that never sent and that no event names (a
// listener, an idle connection) still has no entry.
func TestFooterKeepsFailedDestinationWithNoSends(t *testing.T) {
	failed := netip.MustParseAddrPort("198.18.0.2:9000")
	idle := netip.MustParseAddrPort("198.18.0.3:9000")
	path := filepath.Join(t.TempDir(), "r.jsonl")
	r := NewRecorder(path, false)
	if err := r.Begin(&testHeader().Description); err != nil {
		t.Fatal(err)
	}
	e := testEvent(2) // a send_error
	e.Dst, e.Errno = failed, 32
	if err := r.Event(e); err != nil {
		t.Fatal(err)
	}
	zero := func() *uint64 { var v uint64; return &v }
	end := &session.End{Time: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC), Totals: &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}},
		Traffic: []events.Traffic{{Dst: failed, Sends: zero(), Bytes: zero()}, {Dst: idle, Sends: zero(), Bytes: zero()}}}
	if err := r.End(end); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, _, err := readAll(t, f)
	if err != nil || rd.Footer == nil {
		t.Fatalf("footer %v: %v", rd.Footer, err)
	}
	if rd.Footer.DestinationsSource != "kernel" || len(rd.Footer.Destinations) != 1 {
		t.Fatalf("destinations from %q: %+v, want one, the failed destination's", rd.Footer.DestinationsSource, rd.Footer.Destinations)
	}
	d := rd.Footer.Destinations[0]
	if d.Dst != failed.String() || d.Sends == nil || *d.Sends != 0 || d.Bytes == nil || *d.Bytes != 0 {
		t.Errorf("destination %s sends %v bytes %v, want %s with 0 and 0", d.Dst, d.Sends, d.Bytes, failed)
	}
}
