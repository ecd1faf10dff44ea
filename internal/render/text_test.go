package render

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
)

func textLines(t *testing.T, evs ...events.Event) []string {
	t.Helper()
	var out bytes.Buffer
	tx := NewText(&out)
	tx.SetLocation(time.UTC)
	for i := range evs {
		if err := tx.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Flush(); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}

func TestTextLines(t *testing.T) {
	stateChange := events.Event{
		Time: t0, Kind: events.KindStateChange, PID: 7, Comm: "nginx", OwnerKnown: true,
		Family: events.AFInet6, Protocol: events.ProtoTCP,
		Src:   netip.MustParseAddrPort("[2001:db8::1]:443"),
		Dst:   netip.MustParseAddrPort("[2001:db8::2]:50000"),
		State: events.StateClose, OldState: events.StateEstablished, SinceSend: -1, SinceRecv: -1,
	}
	udp := events.Event{
		Time: t0.Add(time.Millisecond), Kind: events.KindSendError, PID: 99, Comm: "dig", OwnerKnown: true,
		Family: events.AFInet, Protocol: events.ProtoUDP,
		Dst:   netip.MustParseAddrPort("192.0.2.53:53"),
		Bytes: 0, Errno: int32(unix.EPERM), Layer: events.LayerSyscall, Syscall: "sendto",
		SinceSend: -1, SinceRecv: -1,
	}
	orphan := events.Event{
		Time: t0, Kind: events.KindSendReset, Family: events.AFInet, Protocol: events.ProtoTCP,
		Src: netip.MustParseAddrPort("10.0.0.1:80"), Dst: netip.MustParseAddrPort("10.0.0.2:1234"),
		State: events.StateSynRecv, ResetReason: 3, SinceSend: -1, SinceRecv: -1,
	}
	got := textLines(t,
		sendError(events.ECOMM, "93.184.216.34:443", "curl", 4242, 1448),
		retransmit("93.184.216.34:443"),
		resetRecv("93.184.216.34:443"),
		stateChange, udp, orphan,
	)
	want := []string{
		"TIME         KIND          COMM/PID                PROTO SRC -> DST                               STATE         BYTES ERRNO / DETAILS",
		"02:14:45.123 send_error    curl/4242               tcp   10.0.0.1:43210 -> 93.184.216.34:443      ESTABLISHED    1448 ECOMM (communication error on send) syscall=write since_send=12ms since_recv=3.2s",
		"02:14:44.123 retransmit    curl/4242               tcp   10.0.0.1:43210 -> 93.184.216.34:443      ESTABLISHED    1448 seq=3000000000 retrans=3 backoff=3 rto=1.6s srtt=23.5ms cwnd=1 send_q=65160",
		"02:14:44.623 receive_reset curl/4242               tcp   10.0.0.1:43210 -> 93.184.216.34:443      ESTABLISHED       - since_send=1ms since_recv=900ms",
		"02:14:45.123 state_change  nginx/7                 tcp   [2001:db8::1]:443 -> [2001:db8::2]:50000 CLOSE             - from=ESTABLISHED",
		"02:14:45.124 send_error    dig/99                  udp   ? -> 192.0.2.53:53                       -                 0 EPERM (operation not permitted) syscall=sendto layer=syscall",
		"02:14:45.123 send_reset    ?                       tcp   10.0.0.1:80 -> 10.0.0.2:1234             SYN_RECV          - reason=3",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
	// Columns line up with the header.
	hdr := got[0]
	for _, col := range []string{"KIND", "COMM/PID", "PROTO", "SRC -> DST", "STATE"} {
		at := strings.Index(hdr, col)
		for _, l := range got[1:] {
			if l[at-1] != ' ' || l[at] == ' ' {
				t.Errorf("column %s not aligned at %d in %q", col, at, l)
			}
		}
	}
}

func TestTextOverflowAndHostileComm(t *testing.T) {
	e := sendError(events.EPIPE, "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:65535", "\x1b[31mred\\\xff\u200b", 4194304, 1)
	e.Src = netip.MustParseAddrPort("[2001:db8:aaaa:bbbb:cccc:dddd:eeee:1]:65535")
	e.OwnerKnown = true
	lines := textLines(t, e)
	l := lines[1]
	for i := 0; i < len(l); i++ {
		if l[i] < 0x20 || l[i] == 0x7f {
			t.Fatalf("raw control byte in %q", l)
		}
	}
	if !strings.Contains(l, ` \x1b[31mred\\\xff\xe2\x80\x8b/4194304 tcp `) {
		t.Errorf("comm not escaped as expected: %q", l)
	}
	if !strings.Contains(l, ":65535 -> [2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:65535 ESTABLISHED") {
		t.Errorf("overflowing address not separated: %q", l)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

func TestTextWriteError(t *testing.T) {
	tx := NewText(&failWriter{n: 0})
	e := resetRecv("1.2.3.4:5")
	if err := tx.Write(&e); err != nil {
		t.Fatalf("buffered write failed: %v", err)
	}
	if err := tx.Flush(); err == nil {
		t.Fatal("flush to a failing writer succeeded")
	}
	if err := tx.Write(&e); err == nil || tx.Flush() == nil {
		t.Fatal("error not sticky")
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-1:                       "?",
		0:                        "0ns",
		999:                      "999ns",
		850 * time.Microsecond:   "850us",
		1500 * time.Microsecond:  "1.5ms",
		12 * time.Millisecond:    "12ms",
		23456 * time.Microsecond: "23.5ms",
		200 * time.Millisecond:   "200ms",
		3200 * time.Millisecond:  "3.2s",
		59 * time.Second:         "59s",
		252 * time.Second:        "4m12s",
	} {
		if got := format.Duration(d); got != want {
			t.Errorf("format.Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestJSONStream(t *testing.T) {
	var out bytes.Buffer
	j := NewJSON(&out)
	evs := []events.Event{
		sendError(events.ECOMM, "93.184.216.34:443", "curl", 4242, 1448),
		retransmit("93.184.216.34:443"),
		resetRecv("[2001:db8::1]:443"),
	}
	for i := range evs {
		if err := j.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if out.Len() != 0 {
		t.Error("JSON wrote before Flush")
	}
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(evs) {
		t.Fatalf("%d lines, want %d", len(lines), len(evs))
	}
	for i, l := range lines {
		var got events.Event
		if err := events.ParseJSON([]byte(l), &got); err != nil {
			t.Fatal(err)
		}
		if !got.Time.Equal(evs[i].Time) {
			t.Errorf("line %d time %v", i, got.Time)
		}
		got.Time = evs[i].Time
		if got != evs[i] {
			t.Errorf("line %d:\n got %+v\nwant %+v", i, got, evs[i])
		}
	}
}

// The longest name the kernel keeps (15 bytes) with the largest pid
// (pid_max 4194304) still leaves the PROTO column where the header has it.
func TestTextLongCommAligned(t *testing.T) {
	e := sendError(events.EPIPE, "198.18.0.2:9000", "abcdefghijklmno", 4194303, 1)
	e.OwnerKnown = true
	lines := textLines(t, e)
	want := strings.Index(lines[0], "PROTO")
	if got := strings.Index(lines[1], " tcp ") + 1; got != want {
		t.Errorf("PROTO at column %d, the header's at %d:\n%s\n%s", got, want, lines[0], lines[1])
	}
}

// A retransmit says its kind and segments, and a failed one why; a drop
// says the kernel's reason, which way, where and how many segments.
func TestTextRetransmitAndDrop(t *testing.T) {
	rt := retransmit("93.184.216.34:443")
	rt.RetransKind, rt.Segs = events.RetransFast, 45
	failed := rt
	failed.RetransErr, failed.Segs = 1, 0 // NET_XMIT_DROP
	drop := events.Event{
		Time: t0, Kind: events.KindDrop, PID: 4242, Comm: "curl", OwnerKnown: true,
		Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP,
		Src: netip.MustParseAddrPort("10.0.0.1:43210"), Dst: netip.MustParseAddrPort("93.184.216.34:443"),
		State: events.StateEstablished, Bytes: 152, Segs: 1, SinceSend: -1, SinceRecv: -1,
		DropReason: "NETFILTER_DROP", DropDir: events.DropOut, DropLocation: "nft_do_chain",
	}
	got := textLines(t, rt, failed, drop)
	for i, want := range []string{
		"1448 kind=fast segs=45 seq=3000000000 retrans=3 ",
		"1448 kind=fast segs=0 seq=3000000000 retrans=3 backoff=3 rto=1.6s srtt=23.5ms cwnd=1 send_q=65160 err=NET_XMIT_DROP",
		"ESTABLISHED     152 NETFILTER_DROP dir=out at=nft_do_chain segs=1",
	} {
		if !strings.Contains(got[i+1], want) {
			t.Errorf("line %d: %q lacks %q", i+1, got[i+1], want)
		}
	}
}
