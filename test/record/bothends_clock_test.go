package record_test

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestBothEndsClockOffset records two connections through the balancer at
// both ends, then moves the server's recording 5 s ahead, as a host whose
// clock runs ahead would have written it. The handshakes near the
// recordings' edges fall outside the overlap by the raw clocks; the two
// connections give the offset, and both are joined; the page says so too.
func TestBothEndsClockOffset(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.Chromium(t)
	ctx := testutil.Context(t, 2*time.Minute)
	r, dst := balanced(t)
	dir := keepDir(t)
	srv := r.Server.StartActor(t, actorBin, "server", "-mode", "discard", "-listen", dst.String())
	if _, err := srv.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	var cs []*netlab.Actor
	for range 2 {
		c := r.Client.StartActor(t, actorBin, "client", "-to", vip.String(), "-count", "3", "-interval", "50ms", "-size", "100")
		if _, err := c.WaitPhase(ctx, "start"); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	clientRec, serverRec := filepath.Join(dir, "client.jsonl"), filepath.Join(dir, "server.jsonl")
	srvRec := startRecorder(t, ctx, serverRec, []*netlab.Actor{srv})
	cliRec := startRecorder(t, ctx, clientRec, cs)
	for _, c := range cs {
		if err := c.Release("start"); err != nil {
			t.Fatal(err)
		}
	}
	finish(t, ctx, cs)
	cliRec.wait(t, ctx)
	if _, err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	srvRec.wait(t, ctx)

	const ahead = 5 * time.Second
	shifted := filepath.Join(dir, "server-ahead.jsonl")
	shiftClock(t, serverRec, shifted, ahead)
	t.Logf("report %s %s:\n%s", clientRec, shifted, sendtrace(t, "report", clientRec, shifted))
	out := sendtrace(t, "report", "-o", "json", clientRec, shifted)
	var j struct {
		Overlaps []struct {
			Overlaps    bool    `json:"overlaps"`
			CorrectedMs float64 `json:"corrected_ms"`
		} `json:"overlaps"`
		Offsets []struct {
			OffsetMs float64 `json:"offset_ms"`
			WithinMs float64 `json:"within_ms"`
		} `json:"clock_offsets"`
		Joined []json.RawMessage `json:"joined"`
		OneEnd []json.RawMessage `json:"one_end_only"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := float64(ahead / time.Millisecond)
	if len(j.Joined) != 2 || len(j.OneEnd) != 0 {
		t.Errorf("joined %d, one end only %d: want both connections joined\n%s", len(j.Joined), len(j.OneEnd), out)
	}
	// As in joinOf: the upper bound is firm, the estimate close.
	if len(j.Offsets) != 1 || j.Offsets[0].OffsetMs+j.Offsets[0].WithinMs < want-0.001 || math.Abs(j.Offsets[0].OffsetMs-want) > 20 {
		t.Errorf("clock offsets %+v: want the server's clock %v ahead", j.Offsets, ahead)
	}
	if len(j.Overlaps) != 1 || !j.Overlaps[0].Overlaps || math.Abs(j.Overlaps[0].CorrectedMs-want) > 20 {
		t.Errorf("overlaps %+v: want one, with the server's clock corrected by about %v", j.Overlaps, ahead)
	}
	dom, _ := bothEndsPage(t, ctx, "clock", clientRec, shifted)
	if len(dom.Listed)+len(dom.Joined) != 2 || len(dom.OneEnd) != 0 || len(dom.Overlaps) != 1 || dom.Overlaps[0] != "true" ||
		len(dom.Offsets) != 1 || !strings.Contains(dom.Text, "server-ahead.jsonl's corrected by -") {
		t.Errorf("page: %d joined, %d at one end only, overlaps %q, offsets %+v: want both joined, one overlap with the server's clock corrected",
			len(dom.Listed)+len(dom.Joined), len(dom.OneEnd), dom.Overlaps, dom.Offsets)
	}
}

// shiftClock writes the recording at src to dst as a host whose wall
// clock ran d ahead would have: every wall-clock time moves by d, the
// monotonic clock stays.
func shiftClock(t *testing.T, src, dst string, d time.Duration) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 1<<24)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"time", "boot_time", "start_time", "end_time"} {
			if s, ok := rec[k].(string); ok {
				tm, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					t.Fatal(err)
				}
				rec[k] = tm.Add(d).Format(time.RFC3339Nano)
			}
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(append(b, '\n'))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}
