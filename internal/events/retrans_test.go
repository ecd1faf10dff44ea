package events

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A retransmit's err is a -errno or a positive NET_XMIT code; JSON keeps
// them apart (a qdisc drop is not EPERM) and reads each back exactly.
func TestRetransErrRoundTrip(t *testing.T) {
	for _, c := range []struct {
		err   int32
		errno int32
		name  string
	}{
		{-int32(unix.EPERM), int32(unix.EPERM), "EPERM"},
		{1, int32(unix.ENOBUFS), "NET_XMIT_DROP"},
		{-int32(unix.EBUSY), int32(unix.EBUSY), "EBUSY"},
		{-int32(unix.EHOSTUNREACH), int32(unix.EHOSTUNREACH), "EHOSTUNREACH"},
	} {
		if got := RetransErrno(c.err); got != c.errno {
			t.Errorf("RetransErrno(%d) = %d, want %d", c.err, got, c.errno)
		}
		if got := RetransErrName(c.err); got != c.name {
			t.Errorf("RetransErrName(%d) = %q, want %q", c.err, got, c.name)
		}
		roundTrip(t, Event{Time: time.Unix(1, 0).UTC(), Kind: KindRetransmit, SinceSend: -1, SinceRecv: -1,
			RetransErr: c.err, RetransKind: RetransRTO})
	}
	if RetransErrno(0) != 0 || RetransErrName(0) != "" {
		t.Error("a retransmit that went out has an error")
	}
}

func TestDropEventRoundTrip(t *testing.T) {
	for _, dir := range []DropDir{DropOut, DropIn} {
		roundTrip(t, Event{Time: time.Unix(1, 0).UTC(), Kind: KindDrop, SinceSend: -1, SinceRecv: -1,
			Segs: 3, Bytes: 4344, DropReason: "QDISC_DROP", DropLocation: "__dev_queue_xmit", DropDev: "v1a", DropDir: dir})
	}
	var e Event
	if err := ParseJSON([]byte(`{"time":"2026-01-01T00:00:00Z","kind":"drop","drop_dir":"sideways"}`), &e); err == nil {
		t.Error("unknown drop_dir accepted")
	}
	if err := ParseJSON([]byte(`{"time":"2026-01-01T00:00:00Z","kind":"retransmit","retrans_kind":"psychic"}`), &e); err == nil {
		t.Error("unknown retrans_kind accepted")
	}
}
