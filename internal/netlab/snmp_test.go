package netlab

import "testing"

func TestParseCounters(t *testing.T) {
	snmp := `Ip: Forwarding DefaultTTL InReceives
Ip: 2 64 10
Tcp: RtoAlgorithm MaxConn RetransSegs
Tcp: 1 -1 7
IcmpMsg: InType3 OutType3
IcmpMsg: 2 5
`
	netstat := `TcpExt: SyncookiesSent TCPTimeouts
TcpExt: 0 4
`
	snmp6 := `Ip6InReceives                   	12
Udp6OutDatagrams                	3
`
	c := Counters{}
	if err := parseTables([]byte(snmp), c); err != nil {
		t.Fatal(err)
	}
	if err := parseTables([]byte(netstat), c); err != nil {
		t.Fatal(err)
	}
	if err := parsePairs([]byte(snmp6), c); err != nil {
		t.Fatal(err)
	}
	want := Counters{
		"IpForwarding": 2, "IpDefaultTTL": 64, "IpInReceives": 10,
		"TcpRtoAlgorithm": 1, "TcpMaxConn": -1, "TcpRetransSegs": 7,
		"IcmpMsgInType3": 2, "IcmpMsgOutType3": 5,
		"TcpExtSyncookiesSent": 0, "TcpExtTCPTimeouts": 4,
		"Ip6InReceives": 12, "Udp6OutDatagrams": 3,
	}
	if len(c) != len(want) {
		t.Errorf("got %d counters, want %d: %v", len(c), len(want), c)
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %d, want %d", k, c[k], v)
		}
	}
	after := Counters{"TcpRetransSegs": 11}
	if d := Delta(c, after, "TcpRetransSegs"); d != 4 {
		t.Errorf("Delta = %d", d)
	}

	if err := parseTables([]byte("Tcp: A B\nUdp: 1 2\n"), Counters{}); err == nil {
		t.Error("mismatched table prefixes accepted")
	}
	if err := parseTables([]byte("Tcp: A B\nTcp: 1\n"), Counters{}); err == nil {
		t.Error("short value line accepted")
	}
}
