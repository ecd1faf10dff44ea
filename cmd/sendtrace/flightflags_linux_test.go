//go:build linux

package main

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/flight"
	"github.com/sendtrace/sendtrace/internal/session"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// TestFlightNoticesEscaped: the flight recorder's notices on serve's
// stderr name the directory of --flight-dir, a flag's value; a name that
// would retitle the terminal window prints escaped. A floor of free space
// no file system has makes the recorder say it stopped writing there.
func TestFlightNoticesEscaped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flight-\x1b]0;PWNED\x07")
	f := &flightFlags{dir: dir, maxSize: "256MiB", maxAge: flight.DefaultMaxAge, minFree: "4000000000GiB"}
	if err := f.check(); err != nil {
		t.Fatal(err)
	}
	var stderr testutil.LockedBuffer
	rec, err := f.recorder(&stderr)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := rec.Begin(&session.Description{SendtraceVersion: "test", Hostname: "node-a", BootTime: now.Add(-time.Hour), StartTime: now}); err != nil {
		t.Fatal(err)
	}
	e := &events.Event{Time: now, Kind: events.KindSendError, PID: 40, Comm: "app", Protocol: events.ProtoTCP,
		Dst: netip.MustParseAddrPort("198.18.0.2:80"), Errno: 32, Bytes: 100, Cookie: 40}
	if err := rec.Event(e); err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t, 30*time.Second)
	if err := testutil.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		return bytes.Contains(stderr.Bytes(), []byte("stopped writing")), nil
	}); err != nil {
		t.Fatalf("no notice of the free space: %v: %q", err, stderr.Bytes())
	}
	if err := rec.End(&session.End{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	out := stderr.Bytes()
	if i := bytes.IndexFunc(out, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f }); i >= 0 {
		t.Errorf("the flight recorder writes %q to the terminal: %q", out[i], out)
	}
	if want := `flight-\x1b]0;PWNED\x07`; !bytes.Contains(out, []byte(want)) {
		t.Errorf("the notice does not name the directory as %s: %q", want, out)
	}
}
