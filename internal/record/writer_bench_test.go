package record

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
)

// discardFile is a recording file that keeps nothing, so the benchmark
// measures encoding and buffering, not the disk.
type discardFile struct{}

func (discardFile) Write(p []byte) (int, error) { return len(p), nil }
func (discardFile) Sync() error                 { return nil }
func (discardFile) Truncate(int64) error        { return nil }
func (discardFile) Close() error                { return nil }

var _ io.Writer = discardFile{}

func benchStormEvent() *events.Event {
	return &events.Event{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Mono: 1_000_000_000,
		Kind: events.KindSendError, PID: 4242, TID: 4242, Comm: "storm", OwnerKnown: true,
		Cgroup: 1, Cookie: 4163, Family: 2, Protocol: 6,
		Src: netip.MustParseAddrPort("127.0.0.1:35322"), Dst: netip.MustParseAddrPort("127.0.0.1:45057"),
		State: 5, Bytes: 64, Errno: 32, Layer: events.LayerBoth, Syscall: "sendto", StackErrno: 32,
		SinceSend: 264 * time.Millisecond, SinceRecv: 264 * time.Millisecond, RTO: 204 * time.Millisecond,
		SRTT: 61 * time.Microsecond, Cwnd: 11, SndBuf: 8192, SndWnd: 65536, MSS: 32768,
	}
}

func benchWriteEvent(b *testing.B, c Compression) {
	h := &Header{Description: session.Description{Hostname: "bench", KernelRelease: "6.18", Sysctls: map[string]string{}}}
	w, err := newWriter("bench.jsonl", discardFile{}, c, h)
	if err != nil {
		b.Fatal(err)
	}
	e := benchStormEvent()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		e.Mono += 1500
		e.Time = e.Time.Add(1500)
		if err := w.WriteEvent(e); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "events/s")
	}
	if err := w.Close(nil); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWriteEvent is the recorder's per-event cost for a plain file.
func BenchmarkWriteEvent(b *testing.B) { benchWriteEvent(b, CompressNone) }

// BenchmarkWriteEventGzip is the same into a .gz recording.
func BenchmarkWriteEventGzip(b *testing.B) { benchWriteEvent(b, CompressGzip) }

// BenchmarkWriteEventZstd is the same into a .zst recording.
func BenchmarkWriteEventZstd(b *testing.B) { benchWriteEvent(b, CompressZstd) }
