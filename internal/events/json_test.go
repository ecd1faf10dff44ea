package events

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fullTCP sets every Event field to a distinct non-zero value.
func fullTCP() Event {
	return Event{
		Time:       time.Date(2026, 11, 22, 2, 14, 45, 123456789, time.UTC),
		Mono:       987654321012,
		Kind:       KindSendError,
		PID:        4242,
		TID:        4243,
		Comm:       "curl",
		Cgroup:     1 << 40,
		OwnerKnown: true,
		Workload: (&Workload{Kind: WorkloadKubernetes, Name: "cart-7d9", ID: "3f2a9c1b7e44aa",
			Pod: "cart-7d9", Namespace: "shop", Container: "cart", Unit: "cri-containerd-3f2a.scope"}).Finish(),
		Cookie:       18446744073709551615,
		Family:       unix.AF_INET,
		Protocol:     unix.IPPROTO_TCP,
		Src:          netip.MustParseAddrPort("10.0.0.1:43210"),
		Dst:          netip.MustParseAddrPort("93.184.216.34:443"),
		State:        StateCloseWait,
		Bytes:        1448,
		Errno:        int32(unix.ECOMM),
		Layer:        LayerBoth,
		Syscall:      "sendmsg",
		StackErrno:   int32(unix.EPIPE),
		SinceSend:    12*time.Millisecond + 345*time.Nanosecond,
		SinceRecv:    3200 * time.Millisecond,
		Seq:          3000000000,
		Retransmits:  3,
		TotalRetrans: 17,
		Backoff:      4,
		RTO:          1600 * time.Millisecond,
		SRTT:         23456789 * time.Nanosecond,
		Cwnd:         10,
		SendQ:        65160,
		SndBuf:       2626560,
		SndWnd:       64256,
		MSS:          1448,
		DataSegsIn:   21,
		Netns:        4026531840,
		SndUna:       4000000001,
		RcvNxt:       17,
		SndISN:       3999999000,
		RcvISN:       4294967295,
		HasISN:       true,
		RetransErr:   -int32(unix.EHOSTUNREACH),
		RetransKind:  RetransTLP,
		Segs:         45,
		DropReason:   "NETFILTER_DROP",
		DropLocation: "nf_hook_slow",
		DropDev:      "veth0",
		DropDir:      DropOut,
		OldState:     StateEstablished,
		ResetReason:  7,
		OwnerVia:     OwnerViaProc,
	}
}

func roundTrip(t *testing.T, in Event) {
	t.Helper()
	line := AppendJSON(nil, &in)
	if !json.Valid(line) {
		t.Fatalf("invalid JSON: %s", line)
	}
	var out Event
	if err := ParseJSON(line, &out); err != nil {
		t.Fatalf("ParseJSON(%s): %v", line, err)
	}
	if !out.Time.Equal(in.Time) {
		t.Errorf("time: got %v, want %v", out.Time, in.Time)
	}
	out.Time = in.Time
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip mismatch\n got %+v\nwant %+v\nline %s", out, in, line)
	}
}

func TestJSONRoundTripEveryField(t *testing.T) {
	e := fullTCP()
	// Guard against a field added to Event but not to the schema: every
	// field of fullTCP must be non-zero so the round trip checks it.
	v := reflect.ValueOf(e)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("fullTCP leaves %s zero; set it and add it to the schema", v.Type().Field(i).Name)
		}
	}
	roundTrip(t, e)

	// Local time zones come back as the same instant.
	e.Time = time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	roundTrip(t, e)

	// IPv6, a zone, unknown sizes, and negative since.
	e = fullTCP()
	e.Family = unix.AF_INET6
	e.Src = netip.MustParseAddrPort("[fe80::1%eth0]:1")
	e.Dst = netip.MustParseAddrPort("[2001:db8::1]:443")
	e.SinceSend, e.SinceRecv = -1, -1
	e.DataSegsIn = -1
	e.Kind = KindRetransmit
	roundTrip(t, e)

	// Comm with every kind of awkward byte that is valid UTF-8.
	e.Comm = "a\"b\\c\n\t\x00\x1f\x7f\u0085é日\u2028"
	roundTrip(t, e)
}

func TestJSONRoundTripKinds(t *testing.T) {
	for k := KindSendError; k <= KindStateChange; k++ {
		e := Event{
			Time:      time.Unix(1700000000, 5).UTC(),
			Kind:      k,
			Family:    unix.AF_INET,
			Protocol:  unix.IPPROTO_UDP,
			Dst:       netip.MustParseAddrPort("8.8.8.8:53"),
			SinceSend: -1,
			SinceRecv: -1,
		}
		roundTrip(t, e)
		// Without owner, addresses, protocol or family.
		e = Event{Time: time.Unix(0, 0).UTC(), Kind: k, SinceSend: -1, SinceRecv: -1}
		roundTrip(t, e)
	}
	// Values the name tables do not know are written as numbers.
	e := Event{Time: time.Unix(1, 0).UTC(), Kind: KindSendError, Family: 99, Protocol: 200,
		State: 99, Errno: 3000, SinceSend: -1, SinceRecv: -1, OldState: 77}
	roundTrip(t, e)
}

func TestAppendJSONFields(t *testing.T) {
	e := fullTCP()
	line := string(AppendJSON(nil, &e))
	want := `{"time":"2026-11-22T02:14:45.123456789Z","mono_ns":987654321012,"kind":"send_error",` +
		`"pid":4242,"tid":4243,"comm":"curl","owner_known":true,"owner_via":"proc","cgroup":1099511627776,` +
		`"workload":"k8s/shop/cart-7d9/cart","workload_info":{"kind":"k8s","name":"cart-7d9","id":"3f2a9c1b7e44aa",` +
		`"pod":"cart-7d9","namespace":"shop","container":"cart","unit":"cri-containerd-3f2a.scope"},` +
		`"cookie":18446744073709551615,"netns":4026531840,"family":"inet","proto":"tcp","src":"10.0.0.1:43210",` +
		`"dst":"93.184.216.34:443","state":"CLOSE_WAIT","bytes":1448,"errno":70,"errno_name":"ECOMM",` +
		`"errno_text":"communication error on send","layer":"stack+syscall","syscall":"sendmsg",` +
		`"stack_errno":32,"segs":45,"retrans_kind":"tlp","retrans_errno":113,"retrans_error":"EHOSTUNREACH",` +
		`"drop_reason":"NETFILTER_DROP","drop_location":"nf_hook_slow","drop_dev":"veth0","drop_dir":"out",` +
		`"old_state":"ESTABLISHED","reset_reason":7,` +
		`"tcp":{"since_send_ms":12.000345,"since_recv_ms":3200,"seq":3000000000,"retransmits":3,` +
		`"total_retrans":17,"backoff":4,"rto_ms":1600,"srtt_us":23456.789,"cwnd":10,"send_q":65160,` +
		`"sndbuf":2626560,"snd_wnd":64256,"mss":1448,"data_segs_in":21,"snd_una":4000000001,` +
		`"rcv_nxt":17,"snd_isn":3999999000,"rcv_isn":4294967295}}`
	if unix.ECOMM == 70 && line != want {
		t.Errorf("AppendJSON:\n got %s\nwant %s", line, want)
	}
	if strings.Contains(line, "\n") {
		t.Error("line contains a newline")
	}
	// A UDP event has no tcp object, and no optional fields when zero.
	u := Event{Time: time.Unix(0, 0), Kind: KindSendError, Protocol: unix.IPPROTO_UDP}
	got := string(AppendJSON(nil, &u))
	for _, f := range []string{`"tcp"`, `"errno_text"`, `"layer"`, `"syscall"`, `"old_state"`} {
		if strings.Contains(got, f) {
			t.Errorf("UDP event has %s: %s", f, got)
		}
	}
	if !strings.Contains(got, `"src":"","dst":""`) {
		t.Errorf("unknown addresses not empty: %s", got)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "\x00\x01\n\r\t\x1b[31m",
		"é日本", "\u2028\u2029", "\x7f\u0080\u009f", "bad\xff\xfeutf8", "\xe6\x97"} {
		got := AppendJSONString(nil, s)
		if !json.Valid(got) {
			t.Errorf("AppendJSONString(%q) = %s: invalid JSON", s, got)
			continue
		}
		var back, want string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		w, _ := json.Marshal(s)
		json.Unmarshal(w, &want)
		if back != want {
			t.Errorf("AppendJSONString(%q) decodes to %q, encoding/json gives %q", s, back, want)
		}
		for _, c := range got {
			if c < 0x20 || c == 0x7f {
				t.Errorf("AppendJSONString(%q) = %q holds a raw control byte", s, got)
			}
		}
	}
}

func TestParseJSONErrors(t *testing.T) {
	_, err := PeekKind([]byte(`{"kind":"diagnosis","verdict":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := PeekKind([]byte(`{"kind":"diagnosis"}`)); k != "diagnosis" {
		t.Errorf("PeekKind = %q", k)
	}
	if _, err := PeekKind([]byte(`{"pid":1}`)); err == nil {
		t.Error("PeekKind without kind succeeded")
	}
	if _, err := PeekKind([]byte(`not json`)); err == nil {
		t.Error("PeekKind of garbage succeeded")
	}

	var e Event
	err = ParseJSON([]byte(`{"kind":"diagnosis","time":"2026-01-01T00:00:00Z"}`), &e)
	if !errors.Is(err, ErrNotEvent) || !strings.Contains(err.Error(), `kind "diagnosis"`) {
		t.Errorf("ParseJSON(diagnosis) = %v", err)
	}
	for _, line := range []string{
		`{"time":"2026-01-01T00:00:00Z"}`,
		`{"kind":"send_error"}`,
		`{"kind":"send_error","time":"yesterday"}`,
		`{"kind":"send_error","time":"2026-01-01T00:00:00Z","dst":"1.2.3.4"}`,
		`{"kind":"send_error","time":"2026-01-01T00:00:00Z","state":"OPEN"}`,
		`{"kind":"send_error","time":"2026-01-01T00:00:00Z","layer":"tls"}`,
		`{"kind":"send_error","time":"2026-01-01T00:00:00Z","proto":"quic"}`,
		`{"kind":"send_error","time":"2026-01-01T00:00:00Z","tcp":{"rto_ms":"x"}}`,
		`{"kind":"send_error","time":"2026-01-01T00:00:00Z"} trailing`,
	} {
		if err := ParseJSON([]byte(line), &e); err == nil {
			t.Errorf("ParseJSON(%s) succeeded", line)
		}
	}
	// A record that gives only the errno name.
	if err := ParseJSON([]byte(`{"kind":"send_error","time":"2026-01-01T00:00:00Z","errno_name":"ECOMM"}`), &e); err != nil || e.Errno != int32(unix.ECOMM) {
		t.Errorf("errno_name only: %d, %v", e.Errno, err)
	}
}

func TestDecimal(t *testing.T) {
	for _, tc := range []struct {
		v, unit int64
		s       string
	}{
		{0, 1e6, "0"}, {1, 1e6, "0.000001"}, {1500000, 1e6, "1.5"}, {-2500, 1e3, "-2.5"},
		{123456789, 1e3, "123456.789"}, {200e6, 1e6, "200"},
	} {
		if got := string(appendDecimal(nil, tc.v, tc.unit)); got != tc.s {
			t.Errorf("appendDecimal(%d, %d) = %q, want %q", tc.v, tc.unit, got, tc.s)
		}
		if got, err := parseDecimal(tc.s, tc.unit); err != nil || got != tc.v {
			t.Errorf("parseDecimal(%q) = %d, %v", tc.s, got, err)
		}
	}
	if got, _ := parseDecimal("1.5e3", 1e6); got != 1500e6 {
		t.Errorf("parseDecimal(1.5e3) = %d", got)
	}
}

func TestAppendJSONAllocs(t *testing.T) {
	e := fullTCP()
	e.Family = unix.AF_INET6
	e.Dst = netip.MustParseAddrPort("[2001:db8::1]:443")
	e.Comm = "weird\x01name\xff"
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = AppendJSON(buf[:0], &e) }); n != 0 {
		t.Errorf("AppendJSON allocates %v times per call", n)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	e := fullTCP()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], &e)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkParseJSON(b *testing.B) {
	e := fullTCP()
	line := AppendJSON(nil, &e)
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseJSON(line, &e); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPeekKindFastAgreesWithDecoder(t *testing.T) {
	for _, line := range []string{
		`{"time":"2026-01-01T00:00:00Z","mono_ns":1,"kind":"send_error","pid":1}`,
		`{"kind":"header","format":"sendtrace-recording"}`,
		`{"kind":"diagnosis","rule":"black-hole","evidence":{"kinds":["retransmit"]}}`,
		`{"comm":"a\",\"kind\":\"evil","kind":"retransmit"}`,
		`{"x":{"kind":"nested"},"kind":"retransmit"}`,
		`{"kind":"Send_Error"}`,
	} {
		var r struct{ Kind string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		got, err := PeekKind([]byte(line))
		if err != nil || got != r.Kind {
			t.Errorf("PeekKind(%s) = %q, %v; the decoder says %q", line, got, err, r.Kind)
		}
	}
	if _, err := PeekKind([]byte(`{"kind":`)); err == nil {
		t.Error("a cut line must not have a kind")
	}
}

func BenchmarkPeekKind(b *testing.B) {
	e := fullTCP()
	line := AppendJSON(nil, &e)
	for b.Loop() {
		if _, err := PeekKind(line); err != nil {
			b.Fatal(err)
		}
	}
}

// A recording written before data_segs_in was read says nothing about the
// peer's data: the field reads back as unknown (-1), never as 0, which
// would claim the peer sent nothing.
func TestParseJSONWithoutDataSegsIn(t *testing.T) {
	e := fullTCP()
	line := strings.Replace(string(AppendJSON(nil, &e)), `,"data_segs_in":21`, "", 1)
	var out Event
	if err := ParseJSON([]byte(line), &out); err != nil {
		t.Fatal(err)
	}
	if out.DataSegsIn != -1 {
		t.Errorf("data_segs_in absent: got %d, want -1 (unknown)", out.DataSegsIn)
	}
}
