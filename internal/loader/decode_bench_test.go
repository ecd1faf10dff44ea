package loader

import (
	"io"
	"testing"
	"time"
	"unsafe"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/render"
	"golang.org/x/sys/unix"
)

// benchRecords returns raw ring-buffer records shaped like a failure
// storm: mostly send errors from a few processes, with some retransmits
// and an IPv6 socket, so the decoder's interning and both address paths
// are exercised.
func benchRecords() [][]byte {
	const n = 64
	out := make([][]byte, n)
	for i := range n {
		r := &sendtraceEvent{
			TsNs: uint64(1_000_000_000 + i*1500), Cookie: uint64(4096 + i%8), Cgroup: 1,
			Pid: uint32(1000 + i%4), Tid: uint32(1000 + i%4), Family: unix.AF_INET,
			Protocol: unix.IPPROTO_TCP, State: 1, Kind: uint8(events.KindSendError), OwnerKnown: 1,
			Layer: uint8(events.LayerBoth), Bytes: 64, Err: int32(unix.EPIPE), StackErr: int32(unix.EPIPE),
			SyscallNr: unix.SYS_SENDTO, Sport: uint16(40000 + i%8), Dport: 9000,
			SinceSendJ: 25, SinceRecvJ: uint32(sendtraceLimitsJIFFIES_UNKNOWN), RtoJ: 50, SrttUs: 61, Cwnd: 10,
			Sndbuf: 8192, SndWnd: 65536, Mss: 32768,
		}
		copy(r.Saddr[:], []byte{127, 0, 0, 1})
		copy(r.Daddr[:], []byte{127, 0, 0, 1})
		copy(r.Comm[:], []int8{'s', 't', 'o', 'r', 'm', int8('0' + i%4)})
		switch {
		case i%16 == 7:
			r.Kind, r.Err, r.StackErr, r.SyscallNr, r.Layer = uint8(events.KindRetransmit), 0, 0, 0, 0
			r.Bytes, r.Seq, r.Retransmits, r.Backoff = 1448, 123456, 2, 1
		case i%16 == 11:
			r.Family = unix.AF_INET6
			r.Saddr = [16]uint8{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
			r.Daddr = [16]uint8{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}
			r.Err, r.StackErr = int32(unix.EAGAIN), int32(unix.EAGAIN)
		}
		// A copy, so that every record has its own bytes as ring-buffer
		// samples do.
		out[i] = append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(r)), EventSize)...)
	}
	return out
}

func benchDecode(b *testing.B, write func(*events.Event) error) {
	recs := benchRecords()
	d := NewDecoder(time.Unix(1_700_000_000, 0), 250)
	var e events.Event
	// Warm the decoder's name cache and the writers' buffers, as a
	// running session has.
	for _, r := range recs {
		if err := d.Decode(r, &e); err != nil {
			b.Fatal(err)
		}
		if err := write(&e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if err := d.Decode(recs[i%len(recs)], &e); err != nil {
			b.Fatal(err)
		}
		if err := write(&e); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "events/s")
	}
}

// BenchmarkDecode is the decoder alone: raw record to events.Event.
func BenchmarkDecode(b *testing.B) {
	benchDecode(b, func(*events.Event) error { return nil })
}

// BenchmarkDecodeJSON is the -o json stream: decode, then one JSON line.
func BenchmarkDecodeJSON(b *testing.B) {
	j := render.NewJSON(io.Discard)
	benchDecode(b, j.Write)
}

// BenchmarkDecodeText is the default live stream: decode, then one
// aligned text line.
func BenchmarkDecodeText(b *testing.B) {
	t := render.NewText(io.Discard)
	t.SetLocation(time.UTC)
	benchDecode(b, t.Write)
}

// BenchmarkDecodeSummary is what every mode does besides writing: decode,
// then count the event for the end-of-run summary.
func BenchmarkDecodeSummary(b *testing.B) {
	s := render.NewSummary()
	benchDecode(b, func(e *events.Event) error { s.Observe(e); return nil })
}
