package format

import (
	"net/netip"
	"testing"
)

// TestPrintableTitleSequence: a host name that would retitle the terminal
// window (OSC 0 ... BEL) and clear the screen (CSI 2J) prints as text.
func TestPrintableTitleSequence(t *testing.T) {
	const host = "vm\x1b]0;PWNED\x07\x1b[2J"
	const want = `vm\x1b]0;PWNED\x07\x1b[2J`
	if got := Printable(host); got != want {
		t.Errorf("Printable(%q) = %s, want %s", host, got, want)
	}
	if got := string(AppendPrintable([]byte("host "), host)); got != "host "+want {
		t.Errorf("AppendPrintable: %s, want host %s", got, want)
	}
}

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"curl", "curl"},
		{"kworker/0:1 héllo 日本", "kworker/0:1 héllo 日本"},
		{"a\tb\nc\rd", `a\x09b\x0ac\x0dd`},
		{"\x00\x08\x7f", `\x00\x08\x7f`},
		// C1 controls: CSI, OSC and NEL as UTF-8, and CSI as a lone byte.
		{"\u009b31m\u009d0;x\u0085", `\xc2\x9b31m\xc2\x9d0;x\xc2\x85`},
		{"\x9b31m", `\x9b31m`},
		{"\xff\xfe\xc0\x80", `\xff\xfe\xc0\x80`},
		// A right-to-left override and a line separator print nothing
		// of their own.
		{"\u202eevil\u2028", `\xe2\x80\xaeevil\xe2\x80\xa8`},
		{`C:\x1b`, `C:\\x1b`},
	} {
		if got := Printable(tc.in); got != tc.want {
			t.Errorf("Printable(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestAddrZone: an IPv6 zone read from a recording is any text.
func TestAddrZone(t *testing.T) {
	a := netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone("eth0\x1b[2J"), 80)
	if got, want := Addr(a), `[fe80::1%eth0\x1b[2J]:80`; got != want {
		t.Errorf("Addr = %s, want %s", got, want)
	}
	if got := Addr(netip.MustParseAddrPort("198.18.0.2:9000")); got != "198.18.0.2:9000" {
		t.Errorf("Addr = %s", got)
	}
}
