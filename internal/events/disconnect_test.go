package events

import (
	"net/netip"
	"testing"
)

func TestIsDisconnectReport(t *testing.T) {
	for _, c := range []struct {
		kind  Kind
		errno int32
		dst   string
		want  bool
	}{
		{KindErrorReport, 0, "198.18.2.2:0", true},
		{KindErrorReport, 0, "[fd00::2]:0", true},
		{KindErrorReport, ECONNREFUSED, "198.18.2.2:0", false}, // an error, whatever the socket's state
		{KindErrorReport, 0, "198.18.2.2:9000", false},         // still connected: a reader cleared sk_err first
		{KindErrorReport, 0, "0.0.0.0:0", false},               // never connected (an unconnected UDP socket)
		{KindErrorReport, 0, "", false},
		{KindSendError, 0, "198.18.2.2:0", false},
	} {
		var dst netip.AddrPort
		if c.dst != "" {
			dst = netip.MustParseAddrPort(c.dst)
		}
		e := Event{Kind: c.kind, Errno: c.errno, Dst: dst}
		if got := IsDisconnectReport(&e); got != c.want {
			t.Errorf("%s errno %d dst %q: %v, want %v", c.kind, c.errno, c.dst, got, c.want)
		}
	}
}
