package diagnose_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/netlab"
)

// Six curl uploads at 200 KB/s to a Go net/http server whose host starts
// to drop everything from the client. The server answered each upload's
// "Expect: 100-continue", its only data, when the upload began; the
// uploads started 0.5 s apart, so when the drop begins the peer has been
// silent for 1 to 3.5 s: on both sides of the shortest silence the
// diagnosis calls idle. A connection that is sending is not idle, however
// long the peer has sent no data (during an upload it only acknowledges):
// the same fault gets the same answer, black-hole, on every connection.
// The true cause is known from the lab: the server host's input chain.
func TestRateLimitedUploadsBlackHole(t *testing.T) {
	ctx := scenario(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	lab.Client.MustSetSysctl("net.ipv4.tcp_retries2", "3")
	dst := lab.ServerAddr(false, port)
	startPeerRole(t, ctx, lab.Server, "upload", "-listen", dst.String())
	body := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(body, make([]byte, 20<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := startTracer(t, ctx, "--comm", "curl", "--dst", dst.Addr().String())

	const uploads = 6
	type result struct {
		out string
		err error
	}
	results := make(chan result, uploads)
	start := time.Now()
	for i := range uploads {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 500 * time.Millisecond)))
		cmd := lab.Client.Command(ctx, "curl", "-s", "-m", "40", "--limit-rate", "200K", "-T", body,
			"-o", "/dev/null", "-w", "%{http_code} %{errormsg}", fmt.Sprintf("http://%s/upload%d", dst, i))
		go func() {
			out, err := cmd.CombinedOutput()
			results <- result{string(out), err}
		}()
	}
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
	lab.Server.MustNft(fmt.Sprintf(`table inet lab {
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr %s drop
	}
}`, lab.ClientAddr(false)))
	for range uploads {
		select {
		case r := <-results:
			t.Logf("curl: %s (%v)", r.out, r.err)
			if r.err == nil || strings.HasPrefix(r.out, "200") {
				t.Fatalf("lab: an upload survived the black hole: %s", r.out)
			}
		case <-ctx.Done():
			t.Fatal("curl still running")
		}
	}
	evs, ds := tr.stop(t)

	cookies := map[uint64]bool{}
	for _, e := range evs {
		if e.Dst == dst && e.Kind == events.KindStateChange && e.State == events.StateSynSent {
			cookies[e.Cookie] = true
		}
	}
	if len(cookies) != uploads {
		t.Fatalf("lab: %d connections traced, want %d", len(cookies), uploads)
	}
	rules := map[string]int{}
	for _, d := range ds {
		if !cookies[d.Cookie] {
			continue
		}
		rules[d.Rule]++
		if d.Rule != "black-hole" {
			t.Errorf("connection %d: %s", d.Cookie, d.String())
		}
	}
	t.Logf("diagnoses of the %d uploads: %v", uploads, rules)
	if rules["black-hole"] != uploads || len(rules) != 1 {
		t.Errorf("diagnoses %v, want black-hole for each of the %d uploads", rules, uploads)
	}
	notIdle := 0
	for _, d := range want(t, ds, "black-hole") {
		if strings.Contains(d.Evidence.Text, "was not idle") {
			notIdle++
		}
	}
	if notIdle == 0 {
		t.Errorf("no black-hole evidence says why a silent peer did not make the connection idle; the drop came 1 to 3.5s after the peer's last data")
	}
}
