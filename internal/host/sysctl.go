package host

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/session"
)

// SendSysctls are the sysctls that decide how and when a send fails: how
// long TCP retransmits before giving up (ETIMEDOUT), how big the buffers
// are (EAGAIN, blocking), and how path MTU problems are handled.
var SendSysctls = []string{
	"net.ipv4.tcp_retries1",
	"net.ipv4.tcp_retries2",
	"net.ipv4.tcp_syn_retries",
	"net.ipv4.tcp_synack_retries",
	"net.ipv4.tcp_orphan_retries",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_wmem",
	"net.ipv4.tcp_rmem",
	"net.ipv4.tcp_mem",
	"net.ipv4.tcp_notsent_lowat",
	"net.ipv4.tcp_mtu_probing",
	"net.ipv4.tcp_base_mss",
	"net.ipv4.ip_no_pmtu_disc",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_rto_min_us",
	"net.ipv4.tcp_rto_max_ms",
	"net.core.wmem_default",
	"net.core.wmem_max",
	"net.core.rmem_default",
	"net.core.rmem_max",
	"net.netfilter.nf_conntrack_tcp_max_retrans",
	"net.netfilter.nf_conntrack_tcp_loose",
	"net.netfilter.nf_conntrack_tcp_be_liberal",
}

// conntrackTimeouts is read as a glob because the set of TCP states with a
// timeout differs between kernels.
const conntrackTimeouts = "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_*"

// Snapshot is the sysctls of one network namespace.
type Snapshot struct {
	Values  map[string]string
	Missing []string
	Netns   session.Netns
}

// AddTo records the snapshot in a session's description.
func (s *Snapshot) AddTo(d *session.Description) {
	d.Sysctls = s.Values
	d.SysctlsMissing = s.Missing
	d.Netns = s.Netns
}

// ReadSysctls reads SendSysctls in the network namespace of pid, or in the
// caller's own when pid is 0. /proc/sys/net shows the namespace of the
// reading thread, so the read happens on a thread moved into the target
// namespace.
func ReadSysctls(pid uint32) (*Snapshot, error) {
	if pid == 0 {
		s := readSysctlsHere()
		s.Netns.Inode = nsInode("/proc/thread-self/ns/net")
		return s, nil
	}
	s, err := readSysctlsAt(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, fmt.Errorf("%w of pid %d", err, pid)
	}
	s.Netns.PID = pid
	return s, nil
}

// readSysctlsAt reads SendSysctls in the network namespace at nsPath
// (/proc/PID/ns/net or /run/netns/NAME).
func readSysctlsAt(nsPath string) (*Snapshot, error) {
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open network namespace: %w", err)
	}
	defer target.Close()
	var s *Snapshot
	err = inNetns(target, func() {
		s = readSysctlsHere()
		s.Netns.Inode = nsInode("/proc/thread-self/ns/net")
	})
	if err != nil {
		return nil, fmt.Errorf("enter network namespace: %w", err)
	}
	return s, nil
}

// inNetns runs fn on a thread moved into the network namespace target
// (an open /proc/PID/ns/net or /run/netns/NAME): /proc/sys/net and
// /proc/thread-self/net show the namespace of the thread that reads
// them. It runs on a goroutine of its own, so that when the thread cannot
// be moved back it exits still locked, and the runtime throws it away
// instead of reusing it in the wrong namespace.
func inNetns(target *os.File, fn func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- nil
	}()
	return <-errc
}

func readSysctlsHere() *Snapshot {
	s := &Snapshot{Values: map[string]string{}}
	for _, name := range SendSysctls {
		v, err := readSysctl(sysctlPath(name))
		if err != nil {
			s.Missing = append(s.Missing, name)
			continue
		}
		s.Values[name] = v
	}
	paths, _ := filepath.Glob(conntrackTimeouts)
	for _, p := range paths {
		v, err := readSysctl(p)
		if err != nil {
			continue
		}
		s.Values[sysctlName(p)] = v
	}
	if len(paths) == 0 {
		// The conntrack module is not loaded (or not in this namespace);
		// say so once rather than listing every state.
		s.Missing = append(s.Missing, "net.netfilter.nf_conntrack_tcp_timeout_*")
	}
	sort.Strings(s.Missing)
	return s
}

func sysctlPath(name string) string {
	return "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
}

func sysctlName(path string) string {
	return strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), "/", ".")
}

func readSysctl(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.Join(strings.Fields(string(b)), " "), nil
}

func nsInode(path string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}

// NetnsInode returns the inode of the network namespace of pid, 0 when it
// cannot be read.
func NetnsInode(pid uint32) uint64 {
	return nsInode(fmt.Sprintf("/proc/%d/ns/net", pid))
}

// NoteOtherNamespaces says in d when a filtered process lives in another
// network namespace than the one whose sysctls d holds.
func NoteOtherNamespaces(d *session.Description, pids []uint32) {
	if d.Netns.PID == 0 {
		return
	}
	for _, p := range pids {
		if ino := NetnsInode(p); ino != 0 && ino != d.Netns.Inode {
			d.Netns.Note = fmt.Sprintf("sysctls are from the namespace of pid %d; pid %d is in another namespace", d.Netns.PID, p)
			return
		}
	}
}
