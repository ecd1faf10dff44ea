package netstat_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/netstat"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// A recording opens a namespace's counters through a process in it and
// reads them again at its end, when that process (a short-lived client)
// may be gone: the open files must still show that namespace, live.
func TestFilesOutliveTheirProcess(t *testing.T) {
	testutil.RequireRoot(t)
	lab := netlab.New(t)
	ns := lab.NS("c")
	sleeper := ns.Command(context.Background(), "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = sleeper.Wait(); close(done) }()
	t.Cleanup(func() { _ = sleeper.Process.Kill(); <-done })
	// ip netns exec has joined the namespace once /proc/PID/exe is sleep.
	var f *netstat.Files
	err := testutil.Poll(testutil.Context(t, 10*time.Second), 10*time.Millisecond, func() (bool, error) {
		var err error
		if f != nil {
			f.Close()
		}
		f, err = netstat.Open("/proc/" + strconv.Itoa(sleeper.Process.Pid) + "/net")
		if err != nil {
			return false, err
		}
		mine, err := ns.SNMP()
		if err != nil {
			return false, err
		}
		c, err := f.Read()
		return err == nil && c["IpInReceives"] == mine["IpInReceives"] && c["IpOutRequests"] == mine["IpOutRequests"], err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before, err := f.Read()
	if err != nil {
		t.Fatal(err)
	}
	_ = sleeper.Process.Kill()
	<-done
	// Three datagrams from inside the namespace, now without a process.
	err = ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for range 3 {
			if err := unix.Sendto(fd, []byte("x"), 0, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := f.Read()
	if err != nil {
		t.Fatalf("read after the process exited: %v", err)
	}
	truth := ns.MustSNMP()
	if got := netstat.Delta(before, after, "UdpOutDatagrams"); got != 3 || after["IpInReceives"] != truth["IpInReceives"] {
		t.Errorf("after the process exited: UdpOutDatagrams moved %d (want 3), IpInReceives %d, the namespace's own %d",
			got, after["IpInReceives"], truth["IpInReceives"])
	}
}
