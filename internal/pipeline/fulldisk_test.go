package pipeline_test

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestFullDiskOneLine records through the pipeline onto a real tmpfs too
// small for the session: the recorder fails on an event, and again when
// the session ends, with the same error. The session's error says it
// once, in one line, as record prints it.
func TestFullDiskOneLine(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.SmallDisk(t, 16<<10)
	path := filepath.Join(dir, "full.jsonl")
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := pipeline.New(pipeline.NoDiagnosis, record.NewRecorder(path, false))
	if err := p.Begin(&session.Description{SendtraceVersion: "test", Hostname: "host", BootTime: start.Add(-time.Hour), StartTime: start, StartMonoNS: uint64(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var failed error
	for i := 0; i < 1_000_000 && failed == nil; i++ {
		e := events.Event{Time: start.Add(time.Duration(i) * time.Microsecond), Mono: uint64(time.Hour) + uint64(i*1000), Kind: events.KindSendError,
			PID: 42, TID: 42, Comm: "actor", Cookie: uint64(i), Family: 2, Protocol: 6, Errno: 110, Bytes: 1448, SinceSend: -1, SinceRecv: -1,
			Src: netip.MustParseAddrPort("198.18.0.1:40000"), Dst: netip.MustParseAddrPort("198.18.0.2:9000")}
		failed = p.Event(&e)
		if i%500 == 0 && failed == nil {
			failed = p.Flush()
		}
	}
	if failed == nil {
		t.Fatal("a million events fitted on a 16 KiB file system")
	}
	err := p.End(&session.End{Time: start.Add(time.Minute), MonoNS: uint64(time.Hour + time.Minute), Totals: &events.Totals{}})
	if err == nil {
		t.Fatal("the session ended without an error after the disk filled up")
	}
	if !strings.Contains(err.Error(), "the disk is full") || strings.Contains(err.Error(), "\n") || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("the session's error is not one line saying the disk is full:\n%v", err)
	}
	t.Logf("%v", err)
}
