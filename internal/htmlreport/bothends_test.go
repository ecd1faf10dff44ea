package htmlreport

import (
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/join"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/report"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// writeEnd writes a recording of host made of evs, whose Time and Mono
// are set from at: the time after boot, on a host that booted at boot.
func writeEnd(t testing.TB, path, host string, boot time.Time, from, to time.Duration, evs []events.Event, at []time.Duration) {
	t.Helper()
	h := &record.Header{Description: session.Description{
		SendtraceVersion: "test", Hostname: host, KernelRelease: "6.18.0", BootTime: boot,
		StartTime: boot.Add(from), StartMonoNS: uint64(from),
		Hooks: session.Plan{{Layer: session.LayerSendReturn, Hook: "tp_btf/sock_send_length", Active: true}},
	}}
	w, err := record.Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		evs[i].Mono, evs[i].Time = uint64(at[i]), boot.Add(at[i])
		if err := w.WriteEvent(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	end := &session.End{Time: boot.Add(to), MonoNS: uint64(to), Totals: &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}}}
	if err := w.Close(record.NewFooter(end, h, uint64(len(evs)), nil, "events")); err != nil {
		t.Fatal(err)
	}
}

// twoEnds writes a client's and a server's recording of one connection
// through a NAT, the server's clock 40 ms ahead: the client retransmits by
// every kind and the server's rcv_nxt never moves. Then, by the reset
// origin asked for: a reset the server never sent reaches the client after
// 2.5 s without data (middlebox); the same, after the server's recording
// stopped (unknown); or the server sends a reset the client never receives
// (local), its host's firewall having dropped the client's retransmits on
// their way in. The server's ESTABLISHED, the ACK just received, is its
// last event before the failure: its idle time is an upper bound. The
// client's process and the server's workload are named like
// markup.
func twoEnds(t testing.TB, dir, comm, origin string) (client, server string) {
	t.Helper()
	boot := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	base := func(cookie uint64, c string, src, dst string) events.Event {
		return events.Event{PID: 4242, TID: 4242, Comm: c, OwnerKnown: true, Cookie: cookie, Family: events.AFInet, Protocol: events.ProtoTCP,
			Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), State: events.StateEstablished,
			SinceSend: -1, SinceRecv: -1, SRTT: time.Millisecond}
	}
	var cev []events.Event
	var cat []time.Duration
	add := func(at time.Duration, f func(*events.Event)) {
		e := base(11, comm, "198.18.0.1:20001", "198.18.0.80:80")
		f(&e)
		cev, cat = append(cev, e), append(cat, at)
	}
	s := time.Second
	add(10*s, func(e *events.Event) {
		e.Kind, e.State, e.OldState, e.Src = events.KindStateChange, events.StateSynSent, events.StateClose, netip.MustParseAddrPort("198.18.0.1:0")
	})
	add(10*s+time.Millisecond, func(e *events.Event) {
		e.Kind, e.OldState, e.HasISN, e.SndISN, e.RcvISN, e.RcvNxt = events.KindStateChange, events.StateSynSent, true, 1000, 9000, 9001
	})
	for r, k := range []events.RetransKind{events.RetransTLP, events.RetransFast, events.RetransRTO, events.RetransRTO} {
		add(10*s+time.Duration(r+1)*200*time.Millisecond, func(e *events.Event) {
			e.Kind, e.RetransKind, e.Seq, e.Bytes, e.Segs, e.RTO, e.RcvNxt = events.KindRetransmit, k, 1001, 100, 1, 200*time.Millisecond, 9001
		})
	}
	if origin != join.ResetLocal {
		add(13*s, func(e *events.Event) {
			e.Kind, e.SinceRecv, e.RcvNxt = events.KindReceiveReset, 2500*time.Millisecond, 9001
		})
	}
	add(13*s+time.Millisecond, func(e *events.Event) { e.Kind, e.Errno, e.State = events.KindErrorReport, 104, events.StateClose })
	add(13*s+2*time.Millisecond, func(e *events.Event) {
		e.Kind, e.Errno, e.State, e.Syscall, e.Layer = events.KindSendError, 32, events.StateClose, "sendto", events.LayerBoth
	})
	client = filepath.Join(dir, "client.jsonl")
	writeEnd(t, client, "client-host", boot, 9*s, 14*s, cev, cat)

	// The server's clock is 40 ms ahead of the client's at the same mono;
	// it saw the handshake's ACK 300 µs after the client's ESTABLISHED.
	var sev []events.Event
	var sat []time.Duration
	srv := func(at time.Duration, f func(*events.Event)) {
		e := base(22, "server", "198.18.2.2:80", "198.18.2.1:40001")
		e.Workload = &events.Workload{Kind: events.WorkloadKubernetes, Namespace: "shop", Pod: "<b>web-1</b>", Container: "web"}
		f(&e)
		sev, sat = append(sev, e), append(sat, at)
	}
	srv(10*s+1300*time.Microsecond, func(e *events.Event) {
		e.Kind, e.OldState, e.HasISN, e.SndISN, e.RcvISN, e.RcvNxt = events.KindStateChange, events.StateSynRecv, true, 9000, 1000, 1001
		e.SinceRecv = 0
	})
	end := 15 * s
	switch origin {
	case join.ResetUnknown:
		end = 12 * s
	case join.ResetLocal:
		for r := range 4 {
			srv(10*s+time.Duration(r+1)*200*time.Millisecond+40*time.Millisecond, func(e *events.Event) {
				e.Kind, e.DropDir, e.DropReason, e.DropLocation, e.DropDev, e.Segs, e.RcvNxt = events.KindDrop, events.DropIn, "NETFILTER_DROP", "nf_hook_slow", "eth0", 1, 1001
			})
		}
		srv(13*s, func(e *events.Event) { e.Kind, e.RcvNxt = events.KindSendReset, 1001 })
	}
	if origin != join.ResetUnknown {
		srv(14*s, func(e *events.Event) {
			e.Kind, e.State, e.OldState, e.RcvNxt = events.KindStateChange, events.StateCloseWait, events.StateEstablished, 1001
		})
	}
	server = filepath.Join(dir, "server.jsonl")
	writeEnd(t, server, "server-host", boot.Add(40*time.Millisecond), 9*s, end, sev, sat)
	return client, server
}

func writeBothEndsPage(t testing.TB, paths ...string) (string, *join.Result) {
	t.Helper()
	// As report --html does: one replay of each file feeds the join and
	// its report.
	var loaded []*report.Recording
	recs, err := join.Load(paths, func(path string, ends pipeline.Sink) (bool, error) {
		rec, err := report.Load(path, report.Options{}, ends)
		if err != nil {
			return false, err
		}
		loaded = append(loaded, rec)
		return rec.Footer != nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := join.Join(recs)
	page := filepath.Join(filepath.Dir(paths[0]), "both.html")
	if err := WriteFile(page, true, func(w io.Writer) error { return WriteBothEnds(w, r, loaded, Options{}) }); err != nil {
		t.Fatal(err)
	}
	return page, r
}

// TestBothEndsPage opens in Chromium the page of a connection recorded at
// both ends through a NAT, with clocks 40 ms apart. It must draw one
// connection, its middlebox reset named in the client's lane, each lane
// with as many marks of each kind as that end's recording holds, the
// offset the join estimated, both ends' idle time and where the data
// stopped; and names from the recordings must stay text.
func TestBothEndsPage(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	const comm = `<script>evil`
	client, server := twoEnds(t, t.TempDir(), comm, join.ResetMiddlebox)
	page, r := writeBothEndsPage(t, client, server)
	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), comm) || strings.Contains(string(raw), "<b>web-1") {
		t.Fatal("the page holds a name from a recording unescaped")
	}
	if len(r.Joined) != 1 || len(r.Offsets) != 1 || r.Joined[0].ResetOrigin != join.ResetMiddlebox {
		t.Fatalf("join: %d joined, %d offsets; want 1 joined with a middlebox reset", len(r.Joined), len(r.Offsets))
	}
	p := testutil.OpenPage(t, ctx, page, 1200)
	p.RequireSelfContained(page)
	dom := p.ReadBothEndsPage()
	if dom.Scripts != 1 {
		t.Errorf("%d script elements, want only the page's print helper", dom.Scripts)
	}
	if len(dom.Joined) != 1 {
		t.Fatalf("%d joined connections drawn, want 1", len(dom.Joined))
	}
	c := dom.Joined[0]
	checkLanes(t, c, [2]string{client, server}, [2]uint64{11, 22})
	if c.Origin != "middlebox" || len(c.OriginMarks) != 1 || c.OriginMarks[0] != "reset-origin-middlebox lane-0" {
		t.Errorf("reset origin %q, marks naming it %q; want middlebox, on the client's received reset", c.Origin, c.OriginMarks)
	}
	o := r.Offsets[0]
	wantMs := strconv.FormatFloat(float64(o.Estimate)/1e6, 'f', -1, 64)
	if len(dom.Offsets) != 1 || dom.Offsets[0].Ms != wantMs || c.OffsetMs != wantMs || !strings.Contains(dom.Offsets[0].Text, o.Text()) {
		t.Errorf("offsets on the page %+v (connection's %q), want %s ms: %s", dom.Offsets, c.OffsetMs, wantMs, o.Text())
	}
	if o.Estimate < 39*time.Millisecond || o.Estimate > 40300*time.Microsecond {
		t.Errorf("offset %s, want 40 ms plus the ACK's 300 µs, less at most the handshake's 1 ms round trip", o.Estimate)
	}
	if len(c.Idle) != 2 || c.Idle[0] != "2.5s" || c.DataMarks != [2]int{0, 1} || c.Reached != "no" {
		t.Errorf("idle %q, data marks per lane %v, reached %q: want the client's 2.5s, a mark in the server's lane, and no", c.Idle, c.DataMarks, c.Reached)
	}
	// The server's last event before the failure is its ESTABLISHED, and
	// none after it tells: its idle time is only an upper bound.
	if j := r.Joined[0]; !j.IdleAtMost[1] || len(c.Idle) != 2 || c.Idle[1] != "at most "+format.Duration(j.Idle[1]) {
		t.Errorf("server's idle %q on the page, the join's %s (at most: %v): want \"at most\" it", c.Idle, j.Idle[1], j.IdleAtMost[1])
	}
	if len(c.Drops) != 0 {
		t.Errorf("local drops %q, want no line: neither host dropped anything", c.Drops)
	}
	for i, want := range []string{"client · client-host · " + comm + "/4242", "server · server-host · server/4242 · k8s/shop/<b>web-1</b>/web"} {
		if i >= len(c.Names) || !strings.HasPrefix(c.Names[i], want) {
			t.Errorf("lane names %q, want lane %d to start %q", c.Names, i, want)
		}
	}
	// The server's ESTABLISHED came 300 µs after the client's: moved onto
	// the client's clock it is drawn where the client's is (the 40 ms the
	// clocks differ by would be 10 pixels), and its hover text says +1.5ms
	// from the client's SYN_SENT (1.3 ms + 40 ms - the 39.8 ms estimate).
	if len(c.States[0]) != 2 || len(c.States[1]) != 2 {
		t.Fatalf("state marks per lane %v, want 2 and 2", c.States)
	}
	cli, srv := c.States[0][1], c.States[1][0]
	if math.Abs(cli.X-srv.X) > 1 || !strings.HasPrefix(cli.Title, "+1ms ") || !strings.HasPrefix(srv.Title, "+1.5ms ") {
		t.Errorf("ESTABLISHED drawn at x %.1f (%q) by the client and %.1f (%q) by the server: want the same place, +1ms and +1.5ms", cli.X, cli.Title, srv.X, srv.Title)
	}
	// Each recording's section follows, and the client's diagnosis links
	// to the connection drawn.
	if len(dom.Sections) != 2 || dom.Sections[0].ID != "rec-0" || !slices.Equal(dom.Sections[0].Links, []string{"#joined-11"}) || len(dom.Broken) != 0 {
		t.Errorf("recording sections %+v, links without a target %q: want rec-0 and rec-1, the client's diagnosis linking to #joined-11", dom.Sections, dom.Broken)
	}
	if !strings.Contains(dom.Text, comm+"/4242") {
		t.Error("the process name does not show as text")
	}
	t.Logf("lanes %v, origin marks %q, offset %s ms, idle %q", c.Lanes, c.OriginMarks, c.OffsetMs, c.Idle)
	if shots := os.Getenv("SENDTRACE_SCREENSHOTS"); shots != "" {
		p.ScreenshotOf("details.joined", filepath.Join(shots, "synthetic-both-ends.png"))
	}
}

// TestBothEndsPageResetOrigins: a reset whose other end was not recording
// is marked as of unknown origin where it was received, and one an end
// sent that the other never received is marked local where it was sent.
func TestBothEndsPageResetOrigins(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	for _, tc := range []struct{ origin, mark string }{
		{join.ResetUnknown, "reset-origin-unknown lane-0"},
		{join.ResetLocal, "reset-origin-local lane-1"},
	} {
		client, server := twoEnds(t, t.TempDir(), "client", tc.origin)
		page, r := writeBothEndsPage(t, client, server)
		if len(r.Joined) != 1 || r.Joined[0].ResetOrigin != tc.origin {
			t.Fatalf("%s: the join found %d connections, want 1 with that reset origin", tc.origin, len(r.Joined))
		}
		p := testutil.OpenPage(t, ctx, page, 1200)
		p.RequireSelfContained(page)
		dom := p.ReadBothEndsPage()
		if len(dom.Joined) != 1 {
			t.Fatalf("%s: %d connections drawn, want 1", tc.origin, len(dom.Joined))
		}
		c := dom.Joined[0]
		if c.Origin != tc.origin || len(c.OriginMarks) != 1 || c.OriginMarks[0] != tc.mark {
			t.Errorf("reset origin %q, marks naming it %q; want %s, %q", c.Origin, c.OriginMarks, tc.origin, tc.mark)
		}
		checkLanes(t, c, [2]string{client, server}, [2]uint64{11, 22})
		if tc.origin == join.ResetLocal {
			want := []string{"none", "its host dropped 4 of its packets (4 in, 0 out; NETFILTER_DROP in nf_hook_slow on eth0)"}
			if !slices.Equal(c.Drops, want) {
				t.Errorf("local drops %q, want %q", c.Drops, want)
			}
		}
		t.Logf("%s: origin marks %q, lanes %v, drops %q", tc.origin, c.OriginMarks, c.Lanes, c.Drops)
	}
}

// checkLanes compares each lane's marks of each kind with the events of
// that end's socket in its recording.
func checkLanes(t *testing.T, c testutil.JoinedOnPage, recs [2]string, cookies [2]uint64) {
	t.Helper()
	for i := range 2 {
		evs, _ := testutil.ReadRecording(t, recs[i])
		want := testutil.MarksOf(evs, cookies[i])
		if len(want) == 0 {
			t.Errorf("end %d: socket %d has no event in %s", i, cookies[i], recs[i])
		}
		if !maps.Equal(c.Lanes[i], want) {
			t.Errorf("lane %d: marks by kind %v, the recording's events of socket %d by kind %v", i, c.Lanes[i], cookies[i], want)
		}
	}
}

// TestBothEndsPageApart: recordings that do not overlap join nothing, a
// recording beside one that saw neither end lists its socket as seen at
// one end only, and a socket whose ISNs match two at the other ends is
// listed as ambiguous with both candidates.
func TestBothEndsPageApart(t *testing.T) {
	dir := t.TempDir()
	client, server := twoEnds(t, dir, "client", join.ResetMiddlebox)
	// The same server an hour later by its clock.
	evs, _ := testutil.ReadRecording(t, server)
	at := make([]time.Duration, len(evs))
	for i := range evs {
		at[i] = time.Duration(evs[i].Mono) + time.Hour
	}
	later := filepath.Join(dir, "later.jsonl")
	writeEnd(t, later, "server-host", time.Date(2026, 11, 28, 0, 0, 0, 40e6, time.UTC), time.Hour+9*time.Second, time.Hour+15*time.Second, evs, at)
	quiet := filepath.Join(dir, "quiet.jsonl")
	writeEnd(t, quiet, "other-host", time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), 9*time.Second, 14*time.Second, nil, nil)
	// The same server recorded twice: the client's ISNs match two sockets.
	evs, _ = testutil.ReadRecording(t, server)
	at = at[:0]
	for i := range evs {
		at = append(at, time.Duration(evs[i].Mono))
	}
	twin := filepath.Join(dir, "twin.jsonl")
	writeEnd(t, twin, "twin-host", time.Date(2026, 11, 28, 0, 0, 0, 40e6, time.UTC), 9*time.Second, 15*time.Second, evs, at)

	for _, tc := range []struct {
		name     string
		paths    []string
		overlaps string
		oneEnd   []string
		ambig    int // candidates of the client's socket
	}{
		{"apart", []string{client, later}, "false", nil, 0},
		{"one end", []string{client, quiet}, "true", []string{"11"}, 0},
		{"ambiguous", []string{client, server, twin}, "true", nil, 2},
	} {
		page, _ := writeBothEndsPage(t, tc.paths...)
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if n := strings.Count(s, `class="conn joined"`); n != 0 {
			t.Errorf("%s: %d connections drawn, want none", tc.name, n)
		}
		if !strings.Contains(s, `data-overlaps="`+tc.overlaps+`"`) || (tc.overlaps == "false") != strings.Contains(s, "do not overlap in time") {
			t.Errorf("%s: the page does not say overlaps=%s", tc.name, tc.overlaps)
		}
		var got []string
		for _, part := range strings.Split(s, `class="one-end" data-cookie="`)[1:] {
			got = append(got, part[:strings.IndexByte(part, '"')])
		}
		if strings.Join(got, ",") != strings.Join(tc.oneEnd, ",") {
			t.Errorf("%s: at one end only %q, want %q", tc.name, got, tc.oneEnd)
		}
		if !strings.Contains(s, "<b>0</b> connections joined") {
			t.Errorf("%s: the page does not say that nothing was joined", tc.name)
		}
		ambig := strings.Count(s, `<tr class="ambiguous" data-cookie="11">`)
		if candidates := strings.Count(s, `<td class="muted">candidate</td>`); ambig != min(tc.ambig, 1) || candidates != tc.ambig {
			t.Errorf("%s: %d ambiguous rows of the client's socket with %d candidates, want %d and %d", tc.name, ambig, candidates, min(tc.ambig, 1), tc.ambig)
		}
	}
}

// TestBothEndsPageBounded: a page of recordings with many sockets seen at
// one end only lists a bounded number of them and counts the rest.
func TestBothEndsPageBounded(t *testing.T) {
	rec := &join.Recording{Path: "client.jsonl", Host: "client-host"}
	r := &join.Result{Recordings: []*join.Recording{rec}}
	for i := range maxListed + 5 {
		e := &join.End{Rec: rec, Cookie: uint64(i + 1), Client: true, Events: []events.Event{{Kind: events.KindStateChange, Comm: "client", PID: 1}}}
		r.OneEnd = append(r.OneEnd, e)
	}
	var b strings.Builder
	if err := WriteBothEnds(&b, r, nil, Options{}); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if n := strings.Count(s, `class="one-end"`); n != maxListed {
		t.Errorf("%d rows at one end only, want %d", n, maxListed)
	}
	for _, want := range []string{"… 5 more", fmt.Sprintf("Seen at one end only (%d)", maxListed+5), fmt.Sprintf("<b>%d</b> seen at one end only", maxListed+5)} {
		if !strings.Contains(s, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
