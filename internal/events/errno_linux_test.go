package events

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The table stands in for x/sys/unix off Linux; on Linux the two must
// agree on every number, name and text.
func TestLinuxErrnosMatchXSys(t *testing.T) {
	if len(linuxErrnos) < 130 {
		t.Fatalf("linuxErrnos has %d entries, want every errno up to EHWPOISON", len(linuxErrnos))
	}
	for n := int32(1); n <= 133; n++ {
		want := unix.ErrnoName(syscall.Errno(n))
		if got := ErrnoName(n); want != "" && got != want {
			t.Errorf("ErrnoName(%d) = %q, x/sys says %q", n, got, want)
		}
		if want != "" && ErrnoText(n) != syscall.Errno(n).Error() {
			t.Errorf("ErrnoText(%d) = %q, syscall says %q", n, ErrnoText(n), syscall.Errno(n).Error())
		}
	}
	for name, v := range map[string]int32{"ECOMM": ECOMM, "ECONNRESET": ECONNRESET, "EPIPE": EPIPE,
		"ETIMEDOUT": ETIMEDOUT, "EHOSTUNREACH": EHOSTUNREACH, "EAGAIN": EAGAIN, "ENOBUFS": ENOBUFS} {
		if unix.ErrnoName(syscall.Errno(v)) != name {
			t.Errorf("%s = %d, x/sys names %d %q", name, v, v, unix.ErrnoName(syscall.Errno(v)))
		}
	}
	if AFInet != unix.AF_INET || AFInet6 != unix.AF_INET6 || ProtoTCP != unix.IPPROTO_TCP || ProtoUDP != unix.IPPROTO_UDP {
		t.Error("family or protocol constants differ from x/sys/unix")
	}
}
