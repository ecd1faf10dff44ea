package events

import (
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestErrnoNameECOMM(t *testing.T) {
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
		if unix.ECOMM != 70 {
			t.Fatalf("ECOMM = %d on %s, want 70", unix.ECOMM, runtime.GOARCH)
		}
		if got := ErrnoName(70); got != "ECOMM" {
			t.Errorf("ErrnoName(70) = %q, want ECOMM", got)
		}
	}
	n := int32(unix.ECOMM)
	if got := ErrnoName(n); got != "ECOMM" {
		t.Errorf("ErrnoName(ECOMM) = %q", got)
	}
	if got := ErrnoText(n); got != "communication error on send" {
		t.Errorf("ErrnoText(ECOMM) = %q", got)
	}
	if got := ErrnoString(n); got != "ECOMM (communication error on send)" {
		t.Errorf("ErrnoString(ECOMM) = %q", got)
	}
}

func TestErrnoNames(t *testing.T) {
	for _, tc := range []struct {
		n          int32
		name, text string
	}{
		{0, "", ""},
		{int32(unix.ECONNRESET), "ECONNRESET", "connection reset by peer"},
		{int32(unix.EPIPE), "EPIPE", "broken pipe"},
		{int32(unix.EAGAIN), "EAGAIN", "resource temporarily unavailable"},
		{512, "ERESTARTSYS", "interrupted by a signal, restart the call"},
		{516, "ERESTART_RESTARTBLOCK", "interrupted, restart through restart_syscall"},
		{3000, "3000", "errno 3000"},
		{-5, "-5", "errno -5"},
	} {
		if got := ErrnoName(tc.n); got != tc.name {
			t.Errorf("ErrnoName(%d) = %q, want %q", tc.n, got, tc.name)
		}
		if got := ErrnoText(tc.n); got != tc.text {
			t.Errorf("ErrnoText(%d) = %q, want %q", tc.n, got, tc.text)
		}
	}
	if got := ErrnoString(3000); got != "errno 3000" {
		t.Errorf("ErrnoString(3000) = %q", got)
	}
}

func TestParseErrno(t *testing.T) {
	for in, want := range map[string]int32{
		"ECOMM":       int32(unix.ECOMM),
		"ecomm":       int32(unix.ECOMM),
		" EConnReset": int32(unix.ECONNRESET),
		"EWOULDBLOCK": int32(unix.EAGAIN),
		"ENOTSUP":     int32(unix.EOPNOTSUPP),
		"ERESTARTSYS": 512,
		"104":         104,
		"4095":        4095,
	} {
		got, err := ParseErrno(in)
		if err != nil || got != want {
			t.Errorf("ParseErrno(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	// Every name ErrnoName produces parses back.
	for n := int32(1); n < 600; n++ {
		got, err := ParseErrno(ErrnoName(n))
		if err != nil || got != n {
			t.Errorf("ParseErrno(ErrnoName(%d)=%q) = %d, %v", n, ErrnoName(n), got, err)
		}
	}
	for in, want := range map[string]string{
		"EFOO": `unknown errno "EFOO": give a name such as ECONNRESET or a number`,
		"COMM": `unknown errno "COMM": give a name such as ECONNRESET or a number`,
		"0":    `invalid errno "0": give a name such as ECONNRESET or a number from 1 to 4095`,
		"-70":  `invalid errno "-70"`,
		"4096": `invalid errno "4096"`,
		"7x":   `invalid errno "7x"`,
		"":     `empty errno`,
	} {
		_, err := ParseErrno(in)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseErrno(%q) error = %v, want prefix %q", in, err, want)
		}
	}
}

func TestStateNames(t *testing.T) {
	want := []string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
		"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING",
		"NEW_SYN_RECV", "BOUND_INACTIVE"}
	for i, w := range want {
		if got := StateName(uint8(i)); got != w {
			t.Errorf("StateName(%d) = %q, want %q", i, got, w)
		}
		if got, err := ParseStateName(w); err != nil || got != uint8(i) {
			t.Errorf("ParseStateName(%q) = %d, %v", w, got, err)
		}
	}
	if got := StateName(200); got != "200" {
		t.Errorf("StateName(200) = %q", got)
	}
	for in, want := range map[string]uint8{"200": 200, "estab": 1, "fin-wait-1": 4, "close-wait": 8} {
		if got, err := ParseStateName(in); err != nil || got != want {
			t.Errorf("ParseStateName(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseStateName("OPEN"); err == nil || !strings.Contains(err.Error(), `unknown TCP state "OPEN"`) {
		t.Errorf("ParseStateName(OPEN) error = %v", err)
	}
}

func TestFamilyProtoNames(t *testing.T) {
	for f, name := range map[uint16]string{unix.AF_INET: "inet", unix.AF_INET6: "inet6", 0: "", 99: "99"} {
		if got := FamilyName(f); got != name {
			t.Errorf("FamilyName(%d) = %q, want %q", f, got, name)
		}
		if got, err := ParseFamily(name); err != nil || got != f {
			t.Errorf("ParseFamily(%q) = %d, %v", name, got, err)
		}
	}
	if got, _ := ParseFamily("AF_INET6"); got != unix.AF_INET6 {
		t.Errorf("ParseFamily(AF_INET6) = %d", got)
	}
	if _, err := ParseFamily("appletalk"); err == nil {
		t.Error("ParseFamily(appletalk) succeeded")
	}
	for p, name := range map[uint8]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp", unix.IPPROTO_SCTP: "sctp", 0: "", 99: "99"} {
		if got := ProtoName(p); got != name {
			t.Errorf("ProtoName(%d) = %q, want %q", p, got, name)
		}
		if got, err := ParseProto(name); err != nil || got != p {
			t.Errorf("ParseProto(%q) = %d, %v", name, got, err)
		}
	}
	if _, err := ParseProto("quic"); err == nil || !strings.Contains(err.Error(), `unknown protocol "quic"`) {
		t.Errorf("ParseProto(quic) error = %v", err)
	}
}
