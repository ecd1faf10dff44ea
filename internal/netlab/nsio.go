package netlab

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/netstat"
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

// Counters are a namespace's SNMP MIB counters, named as nstat names them.
type Counters = netstat.Counters

// Delta returns after[name] - before[name].
func Delta(before, after Counters, name string) int64 { return netstat.Delta(before, after, name) }

// SNMP reads /proc/net/snmp, /proc/net/netstat and /proc/net/snmp6 as
// seen inside the namespace.
func (n *NS) SNMP() (Counters, error) {
	var c Counters
	err := n.Do(func() (err error) {
		c, err = netstat.Read("/proc/thread-self/net")
		return err
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
