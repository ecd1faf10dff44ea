package scenario_test

import (
	"bufio"
	"context"
	"io"
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
	_, rest, ok := strings.Cut(summary, "\n"+title)
	if !ok {
		return nil
	}
	for _, l := range strings.Split(rest, "\n") {
		if l == "" {
			return nil
		}
		if !strings.HasPrefix(l, "|") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(l, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		if len(cells) >= len(prefix) && strings.Join(cells[:len(prefix)], "|") == strings.Join(prefix, "|") {
			return cells
		}
	}
	return nil
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

	ready := filepath.Join(t.TempDir(), "ready")
	// --dst, not --pid: sendtrace must outlive the client, to be seen
	// saying that events are lost while its reader is still behind.
	cmd := exec.Command(sendtraceBin, "--ready-file", ready, "-o", "json", "--ring-mib", "1", "--dst", dst.Addr().String())
	var stderr testutil.LockedBuffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	fast := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 4096)
		for {
			select {
			case <-fast:
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
		t.Fatalf("sendtrace not ready: %v\n%s", err, stderr.Bytes())
	}
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
	notice := "events lost in the last second: the reader is behind; counts stay exact"
	if err := testutil.Poll(wctx, 100*time.Millisecond, func() (bool, error) {
		return strings.Contains(string(stderr.Bytes()), notice), nil
	}); err != nil {
		t.Errorf("no %q on stderr while events were being lost:\n%s", notice, stderr.Bytes())
	}
	close(fast)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-drained
	if err := cmd.Wait(); err != nil {
		t.Errorf("sendtrace: %v", err)
	}
	summary := string(stderr.Bytes())
	t.Logf("stderr:\n%s", summary)

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
