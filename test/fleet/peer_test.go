package fleet_test

import (
	"fmt"
	"net/netip"
	"testing"
)

// TestServePeerLabels has processes fail real sends to one peer, and a
// real Prometheus scrape `sendtrace serve --metrics-peer`: by address and
// by prefix, the peer's series hold exactly the failures the processes
// saw; with --max-peers 1 a second peer is counted as "other".
func TestServePeerLabels(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	prefix := netip.PrefixFrom(lab.dst.Addr(), 24).Masked()
	other := netip.AddrPortFrom(lab.Link.V4Net.Addr().Next().Next().Next().Next().Next(), udpPort)
	for _, run := range []struct {
		peer, want string
	}{
		{"addr", lab.dst.Addr().String()},
		{"prefix/24", prefix.String()},
	} {
		t.Run(run.peer, func(t *testing.T) {
			srv := startServe(t, ctx, "--events=false", "--dst="+lab.Link.V4Net.String(), "--metrics-peer="+run.peer, "--max-peers=1")
			prom := startPrometheus(t, ctx, srv.addr)
			cl := lab.client(t, ctx, 4)
			if err := cl.Release("start"); err != nil {
				t.Fatal(err)
			}
			saw := len(failedSends(t, ctx, cl))
			if saw != 4 {
				t.Fatalf("lab: the actor saw %d failed sends, want 4", saw)
			}
			prom.waitQuery(t, ctx, fmt.Sprintf(`sum(sendtrace_send_failures_total{errno="EMSGSIZE",peer=%q})`, run.want), float64(saw))
			if run.peer == "addr" {
				// A second peer, past --max-peers 1.
				cl2 := lab.Client.StartActor(t, actorBin, "client", "-proto", "udp", "-to", other.String(), "-pmtu-do", "-size", "1400", "-count", "2")
				if _, err := cl2.WaitPhase(ctx, "start"); err != nil {
					t.Fatal(err)
				}
				if err := cl2.Release("start"); err != nil {
					t.Fatal(err)
				}
				n := len(failedSends(t, ctx, cl2))
				prom.waitQuery(t, ctx, `sum(sendtrace_send_failures_total{errno="EMSGSIZE",peer="other"})`, float64(n))
			}
			srv.Stop(t, tracerStop)
		})
	}
}
