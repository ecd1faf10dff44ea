package diagnose_test

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
)

// TestNodeKeepAliveIdleReset is the pooled-connection failure as Node.js
// meets it: http.Agent keepAlive reuses a socket that a middlebox forgot
// while it idled. The response to request 1 arrived on that socket, so the
// diagnosis must not say the peer never sent data.
func TestNodeKeepAliveIdleReset(t *testing.T) {
	ctx := scenario(t)
	lab, dst := idleLab(t, true)
	addr := netip.MustParseAddrPort(dst)
	h := netlab.StartNodeHTTP(t, ctx, t.TempDir(), lab.Server, addr, lab.Client, addr, "3500")
	tr := startTracer(t, ctx, "--pid="+strconv.Itoa(h.Client.Process.Pid))
	h.Release(t)
	clOut := h.WaitClient(t, ctx)
	var r struct {
		Results []struct {
			N      int
			Status int
			Error  string
			Reused bool
		}
	}
	if err := json.Unmarshal(clOut, &r); err != nil {
		t.Fatalf("node client output: %v: %s", err, clOut)
	}
	t.Logf("node client: %s", clOut)
	if len(r.Results) != 3 || r.Results[1].Status != 200 || r.Results[2].Error != "ECONNRESET" || !r.Results[2].Reused {
		t.Fatalf("lab: want request 1 answered and request 2 ECONNRESET on the reused socket, got %+v", r.Results)
	}

	_, ds := tr.stop(t)
	d := want(t, ds, "idle-reset")[0]
	if strings.Contains(d.ConfidenceWhy, "never sent data") {
		t.Errorf("confidence %s because %q, but the peer answered request 1 on this socket", d.Confidence, d.ConfidenceWhy)
	}
	if d.Evidence.Idle < 3*time.Second {
		t.Errorf("idle %v, the client was silent for 3.5s", d.Evidence.Idle)
	}
	if !strings.Contains(d.String(), d.ConfidenceWhy) {
		t.Errorf("the text form does not give the confidence's reason %q: %s", d.ConfidenceWhy, d.String())
	}
}
