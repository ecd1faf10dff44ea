package record_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// refusedConnects is a Python client that makes blocking connects to a
// port nobody listens on, once its go file exists, and prints how many
// were refused.
const refusedConnects = `
import os, socket, sys, time
host, port, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
while not os.path.exists(go):
    time.sleep(0.01)
refused = 0
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.connect((host, port))
    except ConnectionRefusedError:
        refused += 1
    s.close()
print(refused)
`

// TestRefusedConnectsCountOnce records 3,000 blocking connects that a
// reset refuses. Each failed connect() resets its socket to the
// unconnected state (tcp_disconnect), which reports an error a second
// time with none left to report: src 0.0.0.0:PORT, dst ADDR:0, errno 0.
// That is no failure and no destination: the recording, report and page
// count one error report per refused connect, all under the port the
// client connected to, and the process with 3,000 error reports over
// 3,000 connections. The legacy object of kernels before 5.11, which names
// a socket by its address when nobody asked for its cookie, must tell
// apart the sockets allocated where a refused one was freed.
func TestRefusedConnectsCountOnce(t *testing.T) {
	testutil.RequireRoot(t)
	t.Run("sk_storage", func(t *testing.T) { refusedConnectsCountOnce(t) })
	t.Run("legacy", func(t *testing.T) { refusedConnectsCountOnce(t, "--disable-hook=sk_storage") })
}

func refusedConnectsCountOnce(t *testing.T, args ...string) {
	ctx := testutil.Context(t, 2*time.Minute)
	lab := netlab.NewPair(t, netlab.LinkOpts{})
	dst := lab.ServerAddr(false, port)
	const n = 3000
	dir := t.TempDir()
	path := filepath.Join(dir, "refused.jsonl.zst")
	got := recordPython(t, ctx, lab.Client, path, refusedConnects, args, dst.Addr().String(), strconv.Itoa(int(dst.Port())), strconv.Itoa(n))
	if got != strconv.Itoa(n) {
		t.Fatalf("lab: the client saw %q refused connects, want %d", got, n)
	}

	rd, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	reports := 0
	var e events.Event
	for {
		ok, err := rd.Next(&e)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if e.Kind != events.KindErrorReport {
			continue
		}
		reports++
		if e.Errno != events.ECONNREFUSED || e.Dst != dst {
			t.Errorf("error report %s errno %d on cookie %d: want ECONNREFUSED for %s", e.Dst, e.Errno, e.Cookie, dst)
			break
		}
	}
	rd.Close()
	if reports != n || rd.Disconnects != 0 {
		t.Errorf("%d error reports in the recording for %d refused connects, and %d reports of sockets reset to unconnected", reports, n, rd.Disconnects)
	}

	rep := reportJSON(t, path)
	if rep.ByKind["error_report"] != n {
		t.Errorf("the footer counts %d error reports for %d refused connects", rep.ByKind["error_report"], n)
	}
	for _, d := range rep.Destinations {
		t.Logf("destination %s: %d error reports, %d resets", d.Dst, d.ErrorReports, d.Resets)
		if d.Dst != dst.String() {
			t.Errorf("report lists destination %s (%d error reports); the client only connected to %s", d.Dst, d.ErrorReports, dst)
		} else if d.ErrorReports != n {
			t.Errorf("%s: %d error reports for %d refused connects", d.Dst, d.ErrorReports, n)
		}
	}
	if len(rep.Processes) != 1 || rep.Processes[0].ErrorReports != n {
		t.Errorf("report's processes %+v, want the client with %d error reports", rep.Processes, n)
	}

	page := filepath.Join(dir, "refused.html")
	sendtrace(t, "report", "--html", page, path)
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	// The process's bar: its failures, and in its hover text the error
	// reports among them.
	bar := regexp.MustCompile(`title="0 send errors, (\d+) error reports, [^"]*, (\d+) connections"`).FindStringSubmatch(string(html))
	if bar == nil || bar[1] != strconv.Itoa(n) || bar[2] != strconv.Itoa(n) {
		t.Errorf("the page's process bar %q, want %d error reports over %d connections", bar, n, n)
	}
	if bad := dst.Addr().String() + ":0"; strings.Contains(string(html), bad) {
		t.Errorf("the page names the destination %s", bad)
	}
}
