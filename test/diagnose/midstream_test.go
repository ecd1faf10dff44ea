package diagnose_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/netlab"
)

// A firewall on the server's host starts to drop the client's segments
// after the upload has carried full-size segments for half a second
// (some 200 of them acknowledged). The path carried full-size segments,
// so this is a black hole, never a path MTU black hole. The true cause
// is known from the lab: the server host's input chain.
func TestBlackHoleServerFirewallMidStream(t *testing.T) {
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	r, evs, ds, got := stalledClient(t, lab.Client, lab.Server, dst.String(), 65536, 500*time.Millisecond, func() {
		lab.Server.MustNft(fmt.Sprintf(`table inet lab {
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr %s tcp dport %d drop
	}
}`, lab.ClientAddr(false), port))
	})
	cookie := r.Sockets[0].Cookie
	acked, mss := ackedBeforeStuck(evs, cookie)
	t.Logf("%d bytes acknowledged before the stuck segment (MSS %d: %d full-size segments' worth)", acked, mss, acked/max(mss, 1))
	if mss == 0 || acked < 20*mss {
		t.Fatalf("lab: only %d bytes (MSS %d) were acknowledged before the fault; the test needs full-size segments to have crossed", acked, mss)
	}
	if fmt.Sprint(got) != "[ETIMEDOUT black-hole]" {
		t.Fatalf("the client saw, then sendtrace diagnosed: %v; want [ETIMEDOUT black-hole]", got)
	}
	d := want(t, ds, "black-hole", cookie)[0]
	if strings.Contains(d.Evidence.Text, "first full-size segment") {
		t.Errorf("evidence speaks of a first full-size segment after %d bytes were acknowledged: %s", acked, d.Evidence.Text)
	}
}

// ackedBeforeStuck returns the bytes the peer acknowledged on a socket
// before the segment its retransmits repeat, and the MSS then.
func ackedBeforeStuck(evs []events.Event, cookie uint64) (acked, mss uint32) {
	var isn uint32
	var est bool
	for _, e := range evs {
		if e.Cookie != cookie {
			continue
		}
		if e.Kind == events.KindStateChange && e.State == events.StateEstablished && e.HasISN {
			isn, est = e.SndISN, true
		}
		if e.Kind == events.KindRetransmit && est {
			return e.SndUna - isn - 1, e.MSS
		}
	}
	return 0, 0
}
