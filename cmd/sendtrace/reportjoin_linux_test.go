package main

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
)

// writeEndRecording writes the recording of one end of a connection made
// on host: evs, each at its Mono after a boot at boot.
func writeEndRecording(t *testing.T, path, host string, boot time.Time, evs []events.Event) {
	t.Helper()
	h := &record.Header{Description: session.Description{SendtraceVersion: "test", Hostname: host,
		BootTime: boot, StartTime: boot.Add(time.Second), StartMonoNS: uint64(time.Second)}}
	w, err := record.Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		evs[i].Time = boot.Add(time.Duration(evs[i].Mono))
		if err := w.WriteEvent(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	end := &session.End{Time: boot.Add(20 * time.Second), MonoNS: uint64(20 * time.Second),
		Totals: &events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}}}
	if err := w.Close(record.NewFooter(end, h, uint64(len(evs)), nil, "events")); err != nil {
		t.Fatal(err)
	}
}

// peerResetEnds writes a client's and a server's recording of one
// connection that the server's end resets: the client's end is diagnosed
// peer-reset.
func peerResetEnds(t *testing.T, dir string) (client, server string) {
	boot := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	base := func(cookie uint64, src, dst string, mono time.Duration) events.Event {
		return events.Event{PID: 9, Comm: "app", OwnerKnown: true, Cookie: cookie, Family: events.AFInet, Protocol: events.ProtoTCP,
			Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), State: events.StateEstablished,
			SinceSend: 5 * time.Millisecond, SinceRecv: 5 * time.Millisecond, Mono: uint64(mono)}
	}
	s := time.Second
	syn := base(11, "198.18.0.1:40000", "198.18.0.2:80", 10*s)
	syn.Kind, syn.State, syn.OldState = events.KindStateChange, events.StateSynSent, events.StateClose
	est := base(11, "198.18.0.1:40000", "198.18.0.2:80", 10*s+time.Millisecond)
	est.Kind, est.OldState, est.HasISN, est.SndISN, est.RcvISN = events.KindStateChange, events.StateSynSent, true, 1000, 9000
	rst := base(11, "198.18.0.1:40000", "198.18.0.2:80", 13*s)
	rst.Kind = events.KindReceiveReset
	rep := base(11, "198.18.0.1:40000", "198.18.0.2:80", 13*s+time.Millisecond)
	rep.Kind, rep.Errno, rep.State = events.KindErrorReport, events.ECONNRESET, events.StateClose
	client = filepath.Join(dir, "client.jsonl")
	writeEndRecording(t, client, "client-host", boot, []events.Event{syn, est, rst, rep})

	acc := base(22, "198.18.0.2:80", "198.18.0.1:40000", 10*s+2*time.Millisecond)
	acc.Kind, acc.OldState, acc.HasISN, acc.SndISN, acc.RcvISN = events.KindStateChange, events.StateSynRecv, true, 9000, 1000
	sent := base(22, "198.18.0.2:80", "198.18.0.1:40000", 13*s-time.Millisecond)
	sent.Kind = events.KindSendReset
	server = filepath.Join(dir, "server.jsonl")
	writeEndRecording(t, server, "server-host", boot, []events.Event{acc, sent})
	return client, server
}

// opens counts the opens of files, as the kernel reports them (inotify
// IN_OPEN), while run runs.
func opens(t *testing.T, paths []string, run func()) map[string]int {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	defer unix.Close(fd)
	byWD := map[int32]string{}
	for _, p := range paths {
		// Reads and closes are watched too: inotify merges an event
		// into the one before it when they are the same, so two opens
		// with nothing watched in between would count as one.
		wd, err := unix.InotifyAddWatch(fd, p, unix.IN_OPEN|unix.IN_ACCESS|unix.IN_CLOSE)
		if err != nil {
			t.Fatalf("watch %s: %v", p, err)
		}
		byWD[int32(wd)] = p
	}
	run()
	// The kernel queues each event when the file is opened: once run
	// has returned, they are all there.
	n := map[string]int{}
	buf := make([]byte, 64<<10)
	for {
		k, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return n
		}
		if err != nil {
			t.Fatalf("read inotify: %v", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= k; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				t.Fatal("inotify queue overflowed: opens not counted")
			}
			if ev.Mask&unix.IN_OPEN != 0 {
				n[byWD[ev.Wd]]++
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

// TestBothEndsReadOnce: report's both-ends text and page read each
// recording once: as often as the check for a recording given twice
// (its header) and the report of that recording alone (one replay: the
// read-ahead to the footer's namespaces, then the events) open it, not
// once for the join and again for each recording's report; and the one
// pass still gives both of them the client end's diagnosis.
func TestBothEndsReadOnce(t *testing.T) {
	dir := t.TempDir()
	client, server := peerResetEnds(t, dir)
	both := []string{client, server}

	// What reading each once opens, measured here.
	one := opens(t, both, func() {
		if err := record.FindDuplicate(both); err != nil {
			t.Fatal(err)
		}
	})
	for _, p := range both {
		n := opens(t, []string{p}, func() {
			if err := sendtrace(t, "report", p); err != nil {
				t.Fatal(err)
			}
		})
		if n[p] == 0 {
			t.Fatalf("report %s: no open of the file counted", p)
		}
		one[p] += n[p]
	}

	var text bytes.Buffer
	n := opens(t, both, func() {
		if err := sendtraceOut(t, &text, "report", client, server); err != nil {
			t.Fatal(err)
		}
	})
	for _, p := range both {
		if n[p] != one[p] {
			t.Errorf("report %s %s opened %s %d times; the check for a recording given twice and its report alone open it %d times", client, server, filepath.Base(p), n[p], one[p])
		}
	}
	if !strings.Contains(text.String(), "peer-reset") {
		t.Errorf("the both-ends report does not give the client's peer-reset:\n%s", text.String())
	}

	page := filepath.Join(dir, "both.html")
	n = opens(t, both, func() {
		if err := sendtrace(t, "report", "--html", page, client, server); err != nil {
			t.Fatal(err)
		}
	})
	for _, p := range both {
		if n[p] != one[p] {
			t.Errorf("report --html %s %s %s opened %s %d times; the check for a recording given twice and its report alone open it %d times", filepath.Base(page), client, server, filepath.Base(p), n[p], one[p])
		}
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(string(html), "peer-reset"); c < 2 {
		t.Errorf("the page names peer-reset %d times, want the joined connection's and the client recording's section", c)
	}
}
