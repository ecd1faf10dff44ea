package format

import (
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
)

func appendKV(b []byte, key string, val []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != ' ' {
		b = append(b, ' ')
	}
	b = append(b, key...)
	b = append(b, '=')
	return append(b, val...)
}

func appendKVu(b []byte, key string, v uint64) []byte {
	var num [20]byte
	return appendKV(b, key, strconv.AppendUint(num[:0], v, 10))
}

func appendKVd(b []byte, key string, d time.Duration) []byte {
	var num [24]byte
	return appendKV(b, key, AppendDuration(num[:0], d))
}

// AppendDetails appends what an event says beyond its kind, owner,
// addresses, state, size and errno, as key=value pairs: the live stream,
// the report's timelines and the HTML page all show the same.
func AppendDetails(b []byte, e *events.Event) []byte {
	tcp := e.Protocol == events.ProtoTCP
	switch e.Kind {
	case events.KindSendError:
		if e.Syscall != "" {
			b = appendKV(b, "syscall", []byte(Printable(e.Syscall)))
		}
		// Both layers is the usual case; only the unusual ones are worth
		// the width (layer=syscall: the error came from outside the
		// TCP/IP stack).
		if e.Layer != events.LayerNone && e.Layer != events.LayerBoth {
			b = appendKV(b, "layer", []byte(e.Layer.String()))
		}
		if e.StackErrno != 0 && e.StackErrno != e.Errno {
			b = appendKV(b, "stack_errno", []byte(events.ErrnoName(e.StackErrno)))
		}
	case events.KindRetransmit:
		if e.RetransKind != events.RetransNone {
			b = appendKV(b, "kind", []byte(e.RetransKind.String()))
			b = appendKVu(b, "segs", uint64(e.Segs))
		}
		b = appendKVu(b, "seq", uint64(e.Seq))
		b = appendKVu(b, "retrans", uint64(e.Retransmits))
		b = appendKVu(b, "backoff", uint64(e.Backoff))
		b = appendKVd(b, "rto", e.RTO)
		b = appendKVd(b, "srtt", e.SRTT)
		b = appendKVu(b, "cwnd", uint64(e.Cwnd))
		b = appendKVu(b, "send_q", uint64(e.SendQ))
		if e.RetransErr != 0 {
			b = appendKV(b, "err", []byte(events.RetransErrName(e.RetransErr)))
		}
		// The timing below matters less than the retransmit state and
		// would push the line past one screen.
		return b
	case events.KindErrorReport:
		if tcp && e.Retransmits != 0 {
			b = appendKVu(b, "retrans", uint64(e.Retransmits))
		}
	case events.KindSendReset:
		if e.ResetReason != 0 {
			b = appendKVu(b, "reason", uint64(e.ResetReason))
		}
	case events.KindStateChange:
		b = appendKV(b, "from", []byte(events.StateName(e.OldState)))
	case events.KindDrop:
		if len(b) > 0 && b[len(b)-1] != ' ' {
			b = append(b, ' ')
		}
		b = append(b, Printable(e.DropReason)...)
		b = appendKV(b, "dir", []byte(e.DropDir.String()))
		if e.DropLocation != "" {
			b = appendKV(b, "at", []byte(Printable(e.DropLocation)))
		}
		if e.DropDev != "" {
			b = appendKV(b, "dev", []byte(Printable(e.DropDev)))
		}
		b = appendKVu(b, "segs", uint64(e.Segs))
	}
	if tcp {
		if e.SinceSend >= 0 {
			b = appendKVd(b, "since_send", e.SinceSend)
		}
		if e.SinceRecv >= 0 {
			b = appendKVd(b, "since_recv", e.SinceRecv)
		}
	}
	return b
}

// AppendEvent appends an event on one line without columns: its kind,
// errno, size and state, then its details. Timelines and the HTML page
// use it where the live stream's aligned columns do not fit.
func AppendEvent(b []byte, e *events.Event) []byte {
	b = append(b, e.Kind.String()...)
	if e.Errno != 0 {
		b = append(b, ' ')
		b = append(b, events.ErrnoName(e.Errno)...)
	}
	if e.Bytes != 0 || e.Kind == events.KindSendError || e.Kind == events.KindRetransmit {
		b = appendKVu(b, "len", uint64(e.Bytes))
	}
	if e.Kind != events.KindStateChange && e.State != 0 {
		b = appendKV(b, "state", []byte(events.StateName(e.State)))
	}
	if e.Kind == events.KindStateChange {
		b = append(b, ' ')
		b = append(b, events.StateName(e.OldState)...)
		b = append(b, " -> "...)
		b = append(b, events.StateName(e.State)...)
		return b
	}
	return AppendDetails(b, e)
}
