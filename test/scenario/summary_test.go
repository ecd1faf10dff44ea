package scenario_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// summaryRow returns the cells of the first table row in the summary under
// title whose cells start with prefix.
func summaryRow(summary, title string, prefix ...string) []string {
	for _, cells := range testutil.TableRows(summary, title) {
		if len(cells) >= len(prefix) && strings.Join(cells[:len(prefix)], "|") == strings.Join(prefix, "|") {
			return cells
		}
	}
	return nil
}

// slowSendtrace is sendtrace with a 1 MiB ring buffer whose JSON stdout
// is read slowly, so that a storm of failures overflows the buffer.
type slowSendtrace struct {
	cmd     *exec.Cmd
	stderr  testutil.LockedBuffer
	fast    chan struct{}
	drained chan struct{}
}

// startSlowSendtrace traces dst and returns once sendtrace is ready.
// --dst, not --pid: sendtrace must outlive the client, to be seen saying
// that events are lost while its reader is still behind.
func startSlowSendtrace(t *testing.T, ctx context.Context, dst netip.Addr) *slowSendtrace {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	s := &slowSendtrace{fast: make(chan struct{}), drained: make(chan struct{})}
	s.cmd = exec.Command(sendtraceBin, "--ready-file", ready, "-o", "json", "--ring-mib", "1", "--dst", dst.String())
	s.cmd.Stderr = &s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() })
	go func() {
		defer close(s.drained)
		buf := make([]byte, 4096)
		for {
			select {
			case <-s.fast:
				_, _ = io.Copy(io.Discard, out)
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, err := out.Read(buf); err != nil {
				return
			}
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, tracerReady)
	defer cancel()
	if err := testutil.WaitFile(wctx, ready); err != nil {
		t.Fatalf("sendtrace not ready: %v\n%s", err, s.stderr.Bytes())
	}
	return s
}

// waitLossNotice checks that stderr says events are lost while the
// reader is still behind, not only at exit.
func (s *slowSendtrace) waitLossNotice(t *testing.T, ctx context.Context) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, tracerReady)
	defer cancel()
	notice := "events lost in the last second: the reader is behind; counts stay exact"
	if err := testutil.Poll(wctx, 100*time.Millisecond, func() (bool, error) {
		return strings.Contains(string(s.stderr.Bytes()), notice), nil
	}); err != nil {
		t.Errorf("no %q on stderr while events were being lost:\n%s", notice, s.stderr.Bytes())
	}
}

// stop drains stdout, interrupts sendtrace and returns its stderr, which
// ends with the summary.
func (s *slowSendtrace) stop(t *testing.T) string {
	t.Helper()
	close(s.fast)
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-s.drained
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("sendtrace: %v", err)
	}
	summary := string(s.stderr.Bytes())
	t.Logf("stderr:\n%s", summary)
	return summary
}

// TestSlowReaderCountsStayExact floods EPIPE while sendtrace's stdout is
// read slowly, so its 1 MiB ring buffer overflows. The failed-sends table
// must give the kernel's count, which is what the application saw, with
// the received count beside it; and stderr must say events are being lost
// while it happens, not only at exit.
func TestSlowReaderCountsStayExact(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	startServer(t, ctx, lab.Server, "reset", dst)
	const sends = 100000
	cl := startClient(t, ctx, lab.Client, "-to", dst.String(), "-await-error-before", "1", "-count", strconv.Itoa(sends), "-size", "10")
	st := startSlowSendtrace(t, ctx, dst.Addr())
	release(t, cl, "start")
	// Not finish(): the client's report holds every one of its sends.
	r, err := cl.Wait(ctx)
	if err != nil || r.Error != "" || len(r.Sockets) != 1 {
		t.Fatalf("client: %v %s", err, r.Error)
	}
	var epipe int
	for _, s := range r.Sockets[0].Failed() {
		if s.ErrnoName == "EPIPE" {
			epipe++
		}
	}
	if epipe < sends/2 {
		t.Fatalf("lab: the client saw %d EPIPE, want most of its %d sends", epipe, sends)
	}
	// Still reading slowly: the notice must come while the reader is behind.
	st.waitLossNotice(t, ctx)
	summary := st.stop(t)

	row := summaryRow(summary, "Failed sends by errno and process", "EPIPE (broken pipe)")
	if row == nil {
		t.Fatalf("no EPIPE row in the failed-sends table")
	}
	count, _ := strconv.Atoi(row[2])
	received, _ := strconv.Atoi(row[4])
	if count != epipe {
		t.Errorf("failed-sends table counts %d EPIPE, the client saw %d", count, epipe)
	}
	if received >= count {
		t.Errorf("received %d of %d: the ring buffer did not overflow, so the test proves nothing", received, count)
	}
}

// TestCurlResetNoFailedSend: curl's request goes out, then the server
// resets; curl fails on its receive and no send fails. The summary must
// open with the connection that failed and its errno.
func TestCurlResetNoFailedSend(t *testing.T) {
	ctx := scenarioContext(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (scripts/deps.sh installs it)")
	}
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	startServer(t, ctx, lab.Server, "reset", dst)
	tr := testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, "--dst", dst.Addr().String())
	out, err := lab.Client.Command(ctx, "curl", "-sS", "--max-time", "10", "http://"+dst.String()+"/").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "reset") {
		t.Fatalf("lab: curl %v: %s; want a reset on receive", err, out)
	}
	t.Logf("curl: %v: %s", err, out)
	stdout, _ := tr.Stop(t, tracerStop)
	text := string(stdout)
	t.Logf("sendtrace:\n%s", text)
	sc := bufio.NewScanner(strings.NewReader(text))
	var summary []string
	inSummary := false
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "no send failed") || strings.HasPrefix(l, "no failed sends") {
			inSummary = true
		}
		if inSummary {
			summary = append(summary, l)
		}
	}
	if len(summary) == 0 {
		t.Fatalf("no summary opening line")
	}
	if want := "no send failed, but 1 connection failed: 1 ECONNRESET"; !strings.HasPrefix(summary[0], want) {
		t.Errorf("summary opens with %q, want %q", summary[0], want)
	}
	row := summaryRow(strings.Join(summary, "\n"), "Failed connections by errno", "ECONNRESET (connection reset by peer)", "reset received", dst.String())
	if row == nil || !strings.HasPrefix(row[3], "curl/") || row[4] != "1" {
		t.Errorf("failed connections row %q, want curl's one connection", row)
	}
}

// TestSlowReaderDestinationCountsStayExact floods a connected UDP socket's
// sends to a port nobody listens on, with the ICMP rate limit off, while
// sendtrace's stdout is read slowly: every datagram's port unreachable
// is an error report, more than a 1 MiB ring buffer holds. The
// destination's row must give the kernel's count of error reports, which
// is the ICMP errors the client's namespace received (nstat's
// IcmpInDestUnreachs), with the events received beside it.
func TestSlowReaderDestinationCountsStayExact(t *testing.T) {
	ctx := scenarioContext(t)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	lab.Server.MustSetSysctl("net.ipv4.icmp_ratemask", "0")
	lab.Server.MustSetSysctl("net.ipv4.icmp_ratelimit", "0")
	const sends = 50000
	// -hold: the ICMP errors for the last datagrams find the socket open.
	cl := startClient(t, ctx, lab.Client, "-proto", "udp", "-to", dst.String(), "-count", strconv.Itoa(sends), "-size", "10", "-hold", "1s")
	st := startSlowSendtrace(t, ctx, dst.Addr())
	release(t, cl, "start")
	r, err := cl.Wait(ctx)
	if err != nil || r.Error != "" || len(r.Sockets) != 1 {
		t.Fatalf("client: %v %s", err, r.Error)
	}
	var refused uint64
	for _, s := range r.Sockets[0].Failed() {
		if s.ErrnoName == "ECONNREFUSED" {
			refused++
		}
	}
	icmp := lab.Client.MustSNMP()["IcmpInDestUnreachs"]
	if refused == 0 || icmp < sends/4 {
		t.Fatalf("lab: the client saw %d ECONNREFUSED and its namespace %d ICMP unreachables for %d sends", refused, icmp, sends)
	}
	st.waitLossNotice(t, ctx)
	summary := st.stop(t)

	var kernel uint64
	for _, row := range testutil.TableRows(summary, "Kernel totals by process, kind and errno") {
		if row[1] == "error_report" {
			n, _ := strconv.ParseUint(row[3], 10, 64)
			kernel += n
		}
	}
	row := summaryRow(summary, "Retransmits, resets and error reports by destination", dst.String())
	if row == nil {
		t.Fatalf("no row for %s in the destinations table", dst)
	}
	var count, received uint64
	if n, err := fmt.Sscanf(row[7], "%d (%d received)", &count, &received); n != 2 {
		t.Fatalf("error reports cell %q, want the kernel's count and the events received: %v", row[7], err)
	}
	t.Logf("error reports: %d counted by the kernel, %d received; ICMP unreachables %d; ECONNREFUSED sends %d", count, received, icmp, refused)
	if count != kernel || count != uint64(icmp) {
		t.Errorf("destination row counts %d error reports; the kernel's totals table %d, nstat IcmpInDestUnreachs %d", count, kernel, icmp)
	}
	if refused > count {
		t.Errorf("the client's %d ECONNREFUSED sends each took an error report, more than the %d counted", refused, count)
	}
	if received >= count {
		t.Errorf("received %d of %d: the ring buffer did not overflow, so the test proves nothing", received, count)
	}
	if !strings.Contains(summary, "by destination (kernel's totals, exact") {
		t.Errorf("the destinations table does not say its counts are the kernel's")
	}
}
