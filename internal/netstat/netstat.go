// Package netstat reads a network namespace's own SNMP counters, the ones
// nstat shows (TcpRetransSegs, TcpExtTCPTimeouts, IpExtOutOctets), and
// says what moved between two readings. Parsing works anywhere, so that
// recordings holding these counters are read on any system; reading them
// from /proc is Linux only.
package netstat

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Counters are a namespace's counters, named as nstat names them: the
// table prefix followed by the field ("TcpRetransSegs",
// "TcpExtTCPTimeouts", "UdpInErrors", "Ip6OutNoRoutes").
type Counters map[string]int64

// Delta returns after[name] - before[name].
func Delta(before, after Counters, name string) int64 { return after[name] - before[name] }

// ParseTables reads the /proc/net/snmp and /proc/net/netstat layout: for
// each table a line "Prefix: Name1 Name2 ..." followed by a line
// "Prefix: v1 v2 ...".
func ParseTables(b []byte, c Counters) error {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines)%2 != 0 {
		return fmt.Errorf("odd number of lines (%d)", len(lines))
	}
	for i := 0; i < len(lines); i += 2 {
		hp, hrest, ok1 := strings.Cut(lines[i], ":")
		vp, vrest, ok2 := strings.Cut(lines[i+1], ":")
		if !ok1 || !ok2 || hp != vp {
			return fmt.Errorf("line %d: header %q does not match values %q", i+1, lines[i], lines[i+1])
		}
		names, vals := strings.Fields(hrest), strings.Fields(vrest)
		if len(names) != len(vals) {
			return fmt.Errorf("%s: %d names, %d values", hp, len(names), len(vals))
		}
		for j, name := range names {
			v, err := strconv.ParseInt(vals[j], 10, 64)
			if err != nil {
				return fmt.Errorf("%s%s: %w", hp, name, err)
			}
			c[hp+name] = v
		}
	}
	return nil
}

// ParsePairs reads the /proc/net/snmp6 layout: "Name value" per line, the
// name already carrying its table prefix.
func ParsePairs(b []byte, c Counters) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %w", f[0], err)
		}
		c[f[0]] = v
	}
	return sc.Err()
}

// Parse reads the contents of a namespace's snmp, netstat and snmp6
// files; snmp6 may be nil (a kernel or namespace without IPv6).
func Parse(snmp, netstat, snmp6 []byte) (Counters, error) {
	c := Counters{}
	if err := ParseTables(snmp, c); err != nil {
		return nil, fmt.Errorf("snmp: %w", err)
	}
	if err := ParseTables(netstat, c); err != nil {
		return nil, fmt.Errorf("netstat: %w", err)
	}
	if snmp6 != nil {
		if err := ParsePairs(snmp6, c); err != nil {
			return nil, fmt.Errorf("snmp6: %w", err)
		}
	}
	return c, nil
}

// kept are the tables a recording keeps: IP, TCP and UDP, v4 and v6.
// ICMP's per-type counters and MPTCP's are left out.
var kept = []string{"IpExt", "Ip6", "Ip", "TcpExt", "Tcp", "Udp6", "Udp"}

// Kept says whether a counter belongs to the tables a recording keeps.
func Kept(name string) bool {
	for _, p := range kept {
		if rest, ok := strings.CutPrefix(name, p); ok {
			// "UdpLite…" and "Udp6…" both start with "Udp": the next
			// letter of a field is upper case.
			return rest != "" && rest[0] >= 'A' && rest[0] <= 'Z' && !strings.HasPrefix(rest, "Lite")
		}
	}
	return false
}

// constants are not counters: settings and limits nstat leaves out too.
var constants = map[string]bool{
	"IpForwarding": true, "IpDefaultTTL": true, "TcpRtoAlgorithm": true,
	"TcpRtoMin": true, "TcpRtoMax": true, "TcpMaxConn": true, "TcpCurrEstab": true,
}

// Moved returns the kept counters that changed from before to after, by
// how much: what `nstat` prints for the interval.
func Moved(before, after Counters) map[string]int64 {
	out := map[string]int64{}
	for name, v := range after {
		if !Kept(name) || constants[name] {
			continue
		}
		if d := v - before[name]; d != 0 {
			out[name] = d
		}
	}
	return out
}
