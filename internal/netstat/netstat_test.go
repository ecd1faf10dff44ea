package netstat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata holds /proc/self/net/{snmp,netstat,snmp6} as read on a 6.18
// host (testdata/KERNEL), so the parser meets the real layout: 15 Tcp
// fields, a TcpExt table of over a hundred, IpExt, MPTcpExt, IcmpMsg.
func readTestdata(t *testing.T) Counters {
	t.Helper()
	var b [3][]byte
	for i, n := range []string{"snmp", "netstat", "snmp6"} {
		var err error
		if b[i], err = os.ReadFile(filepath.Join("testdata", n)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Parse(b[0], b[1], b[2])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseRealFiles(t *testing.T) {
	c := readTestdata(t)
	for _, name := range []string{"TcpRetransSegs", "TcpOutSegs", "TcpOutRsts", "TcpExtTCPTimeouts", "TcpExtTCPLossProbes",
		"TcpExtTCPFastRetrans", "TcpExtTCPSynRetrans", "TcpExtTCPAbortOnTimeout", "IpExtOutOctets", "UdpInErrors", "Ip6OutRequests"} {
		if _, ok := c[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	if c["TcpMaxConn"] != -1 {
		t.Errorf("TcpMaxConn = %d, want -1 (the file says -1)", c["TcpMaxConn"])
	}
	if c["TcpOutSegs"] <= 0 || c["IpExtOutOctets"] <= 0 {
		t.Errorf("TcpOutSegs %d, IpExtOutOctets %d: this host had sent traffic", c["TcpOutSegs"], c["IpExtOutOctets"])
	}
}

// The snmp file's value line must match its header, field for field.
func TestParseRejectsBadTables(t *testing.T) {
	if err := ParseTables([]byte("Tcp: A B\nUdp: 1 2\n"), Counters{}); err == nil {
		t.Error("mismatched table prefixes accepted")
	}
	if err := ParseTables([]byte("Tcp: A B\nTcp: 1\n"), Counters{}); err == nil {
		t.Error("short value line accepted")
	}
	if err := ParseTables([]byte("Tcp: A\nTcp: x\n"), Counters{}); err == nil {
		t.Error("a value that is no number accepted")
	}
}

func TestKept(t *testing.T) {
	for name, want := range map[string]bool{
		"TcpRetransSegs": true, "TcpExtTCPTimeouts": true, "IpInReceives": true, "IpExtOutOctets": true,
		"Ip6OutRequests": true, "UdpInErrors": true, "Udp6InErrors": true,
		"UdpLiteInErrors": false, "UdpLite6InErrors": false, "IcmpInMsgs": false, "IcmpMsgInType3": false,
		"MPTcpExtMPCapableSYNRX": false, "Icmp6InMsgs": false,
	} {
		if Kept(name) != want {
			t.Errorf("Kept(%s) = %v", name, !want)
		}
	}
}

// Moved is what nstat prints: kept counters that changed, settings left
// out.
func TestMoved(t *testing.T) {
	before := readTestdata(t)
	after := Counters{}
	for k, v := range before {
		after[k] = v
	}
	after["TcpRetransSegs"] += 45
	after["TcpExtTCPTimeouts"] += 3
	after["TcpCurrEstab"] += 2
	after["IcmpInMsgs"] += 1
	m := Moved(before, after)
	if len(m) != 2 || m["TcpRetransSegs"] != 45 || m["TcpExtTCPTimeouts"] != 3 {
		t.Errorf("moved %v, want TcpRetransSegs 45 and TcpExtTCPTimeouts 3", m)
	}
	if k, err := os.ReadFile(filepath.Join("testdata", "KERNEL")); err != nil || !strings.HasPrefix(string(k), "6.") {
		t.Errorf("testdata/KERNEL %q: %v", k, err)
	}
}
