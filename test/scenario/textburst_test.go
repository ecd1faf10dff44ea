package scenario_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

var (
	textFullSegs  = regexp.MustCompile(` segs=(\d+) `)
	textBurstSegs = regexp.MustCompile(` (\d+) segments (?:\([^)]*\) )?in (\d+) retransmits over `)
	textReceived  = regexp.MustCompile(`stream complete: (\d+) events received`)
)

// TestTextIperf3UnderLoss: the live text stream of a bulk transfer under
// 2% loss stays on a screen (a connection's retransmits print at most one
// line a second), loses no segment in its sums, and its summary's
// destination row counts the segments TcpRetransSegs counted.
func TestTextIperf3UnderLoss(t *testing.T) {
	ctx := scenarioContext(t)
	lab, srv := lossyIperf3(t, ctx)
	args := append(append([]string{}, extraArgs...), "--comm", "iperf3", "--dst", srv.Addr().String()+"/32")
	tr := testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, args...)
	start := time.Now()
	before := lab.Client.MustSNMP()
	cl := lab.Client.Command(ctx, "iperf3", "-c", srv.Addr().String(), "-p", "5201", "-t", "3")
	if out, err := cl.CombinedOutput(); err != nil {
		t.Fatalf("iperf3 client: %v\n%s", err, out)
	}
	lab.Client.WaitSocketsGone(t, ctx)
	after := lab.Client.MustSNMP()
	// What a person watching would see once the transfer is over.
	time.Sleep(1500 * time.Millisecond)
	beforeStop := tr.Stdout()
	out, _ := tr.Stop(t, tracerStop)
	elapsed := time.Since(start)
	mib := uint64(netlab.Delta(before, after, "TcpRetransSegs"))
	if mib == 0 {
		t.Fatal("lab: no retransmits; the lossy router dropped nothing")
	}

	lines, segs, retransmits, perConn := retransLines(t, out)
	// Every sum was on the screen before the interrupt: none waited for
	// the end of the session. (Here the connections' closes print them;
	// a second that is over with nothing after it prints on the idle
	// flush, which TestTextSumsInOrder in render covers.)
	if _, early, _, _ := retransLines(t, beforeStop); early != segs {
		t.Errorf("before the interrupt, the text showed %d retransmitted segments; at the end %d: the last sums waited for the end", early, segs)
	}
	var received uint64
	if m := textReceived.FindSubmatch(out); m != nil {
		received, _ = strconv.ParseUint(string(m[1]), 10, 64)
	}
	pid := cl.Process.Pid
	dstRow := summaryRow(string(out), "Retransmits, resets and error reports by destination", srv.String())
	t.Logf("iperf3 under 2%% loss, %s traced: %d retransmit lines for %d retransmits carrying %d segments (%d events received in all); TcpRetransSegs %d; summary row %q",
		elapsed.Round(100*time.Millisecond), lines, retransmits, segs, received, mib, dstRow)

	// One line a second per connection at most, plus its first; another
	// event of the connection (a failed send, a diagnosis) prints the sum
	// so far before it, and may add one line each.
	secs := int(elapsed/time.Second) + 1
	others, diagnoses := otherLines(out)
	for c, n := range perConn {
		if n > secs+1+others[c]+diagnoses {
			t.Errorf("connection %s printed %d retransmit lines in %s, with %d other lines of it and %d diagnoses", c, n, elapsed, others[c], diagnoses)
		}
	}
	// The sums lose nothing: what the lines stand for, plus what the
	// kernel counted without an event, is TcpRetransSegs.
	untraced := uint64(0)
	if row := summaryRow(string(out), "Kernel totals", "iperf3/"+strconv.Itoa(pid), "retransmit/untraced"); row != nil {
		untraced, _ = strconv.ParseUint(row[4], 10, 64)
	}
	if segs+untraced != mib {
		t.Errorf("text lines carry %d segments and %d were untraced; TcpRetransSegs grew by %d", segs, untraced, mib)
	}
	if len(dstRow) < 2 || dstRow[1] != strconv.FormatUint(mib, 10) {
		t.Errorf("summary's retransmitted segments for %s: %q; TcpRetransSegs grew by %d", srv, dstRow, mib)
	}
}

// retransLines reads the retransmit lines of a text stream: how many, the
// segments and retransmits they stand for, and the lines per connection.
// otherLines counts, per source address, the stream's lines of other
// kinds than retransmits and drops, and the diagnosis lines.
func otherLines(out []byte) (n map[string]int, diagnoses int) {
	n = map[string]int{}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "=> diagnosis") {
			diagnoses++
			continue
		}
		if len(l) < 27 || l[2] != ':' || strings.Contains(l[12:27], " retransmit ") || strings.Contains(l[12:27], " drop ") {
			continue
		}
		if f := strings.Fields(l); len(f) > 4 {
			n[f[4]]++
		}
	}
	return n, diagnoses
}

func retransLines(t *testing.T, out []byte) (lines, segs, retransmits uint64, perConn map[string]int) {
	t.Helper()
	perConn = map[string]int{}
	for _, l := range strings.Split(string(out), "\n") {
		if len(l) < 27 || l[2] != ':' || !strings.Contains(l[12:27], " retransmit ") {
			continue
		}
		lines++
		perConn[strings.Fields(l)[4]]++
		if m := textBurstSegs.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			k, _ := strconv.ParseUint(m[2], 10, 64)
			segs, retransmits = segs+n, retransmits+k
		} else if m := textFullSegs.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			segs, retransmits = segs+n, retransmits+1
		} else {
			t.Errorf("retransmit line without segments: %q", l)
		}
	}
	return lines, segs, retransmits, perConn
}
