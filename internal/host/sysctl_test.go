package host

import (
	"os"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

func TestSysctlsOwnNamespace(t *testing.T) {
	s, err := ReadSysctls(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Values["net.ipv4.tcp_retries2"]; !ok {
		t.Skip("this kernel has no IPv4 sysctls (/proc/sys/net/ipv4): IPv4 is not built in")
	}
	if v := s.Values["net.ipv4.tcp_wmem"]; strings.Count(v, " ") != 2 {
		t.Errorf("tcp_wmem %q: want three values separated by single spaces", v)
	}
}

func TestSysctlsOfPID(t *testing.T) {
	testutil.RequireRoot(t)
	self, err := ReadSysctls(0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadSysctls(uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if s.Netns.Inode != self.Netns.Inode || s.Values["net.ipv4.tcp_retries2"] != self.Values["net.ipv4.tcp_retries2"] {
		t.Errorf("own pid's namespace differs from own namespace: %+v vs %+v", s.Netns, self.Netns)
	}
}
