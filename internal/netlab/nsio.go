package netlab

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that has joined the namespace. Files under
// /proc/sys/net and /proc/thread-self/net opened by fn belong to the
// namespace. fn must not start goroutines that expect the namespace: only
// its own thread is in it.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is unlocked only once it is back in its original
		// namespace; otherwise it ends with this goroutine, so no other
		// goroutine ever runs in the lab's namespace by accident.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + n.Name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func sysctlPath(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

// SetSysctl sets a sysctl (dotted name, e.g. net.ipv4.tcp_retries2) in
// the namespace. Only per-namespace sysctls (most of net.*) can be set
// this way without touching the host.
func (n *NS) SetSysctl(key, value string) error {
	if !strings.HasPrefix(key, "net.") {
		return fmt.Errorf("sysctl %s is not per network namespace", key)
	}
	err := n.Do(func() error { return os.WriteFile(sysctlPath(key), []byte(value), 0o644) })
	if err != nil {
		return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, n.Name, err)
	}
	return nil
}

// Sysctl reads a sysctl in the namespace.
func (n *NS) Sysctl(key string) (string, error) {
	var v string
	err := n.Do(func() error {
		b, err := os.ReadFile(sysctlPath(key))
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("sysctl %s in %s: %w", key, n.Name, err)
	}
	return v, nil
}

// MustSetSysctl is SetSysctl that fails the test on error.
func (n *NS) MustSetSysctl(key, value string) {
	n.lab.t.Helper()
	if err := n.SetSysctl(key, value); err != nil {
		n.lab.t.Fatal(err)
	}
}

// Counters are a namespace's SNMP MIB counters, named as nstat names them:
// the table prefix followed by the field ("TcpRetransSegs",
// "TcpExtTCPTimeouts", "UdpInErrors", "Ip6OutNoRoutes", "IcmpMsgInType3").
type Counters map[string]int64

// Delta returns after[name] - before[name].
func Delta(before, after Counters, name string) int64 { return after[name] - before[name] }

// SNMP reads /proc/net/snmp, /proc/net/netstat and /proc/net/snmp6 as
// seen inside the namespace.
func (n *NS) SNMP() (Counters, error) {
	c := Counters{}
	err := n.Do(func() error {
		for _, f := range []string{"snmp", "netstat"} {
			b, err := os.ReadFile("/proc/thread-self/net/" + f)
			if err != nil {
				return err
			}
			if err := parseTables(b, c); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
		b, err := os.ReadFile("/proc/thread-self/net/snmp6")
		if err != nil {
			// A namespace without IPv6 has no snmp6; the v4 counters stand.
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		return parsePairs(b, c)
	})
	if err != nil {
		return nil, fmt.Errorf("snmp counters in %s: %w", n.Name, err)
	}
	return c, nil
}

// MustSNMP is SNMP that fails the test on error.
func (n *NS) MustSNMP() Counters {
	n.lab.t.Helper()
	c, err := n.SNMP()
	if err != nil {
		n.lab.t.Fatal(err)
	}
	return c
}

// parseTables reads the /proc/net/snmp and /proc/net/netstat layout: for
// each table a line "Prefix: Name1 Name2 ..." followed by a line
// "Prefix: v1 v2 ...".
func parseTables(b []byte, c Counters) error {
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

// parsePairs reads the /proc/net/snmp6 layout: "Name value" per line, the
// name already carrying its table prefix.
func parsePairs(b []byte, c Counters) error {
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
