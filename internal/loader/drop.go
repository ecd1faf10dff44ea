package loader

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// DropNames names what the drop programs report in numbers: the drop
// reason, numbered differently by every kernel version, from the running
// kernel's own BTF (enum skb_drop_reason), and the place that dropped,
// a kernel address, from /proc/kallsyms.
type DropNames struct {
	reasons  map[uint32]string
	subsys   map[uint32]string
	consumed uint32 // SKB_CONSUMED, or noReason
	tcpClose uint32 // SKB_DROP_REASON_TCP_CLOSE, or noReason
	known    bool   // the kernel has enum skb_drop_reason

	locMu sync.Mutex
	locs  map[uint64]string // drop place -> function, as looked up
}

const (
	noReason = 0xffffffff
	// From 6.12 a reason's high 16 bits name a subsystem with reasons of
	// its own (mac80211, openvswitch); 0 is the core enum.
	subsysShift = 16
	subsysMask  = 0xffff0000
)

func newDropNames(spec *btf.Spec) *DropNames {
	n := &DropNames{reasons: map[uint32]string{}, subsys: map[uint32]string{}, consumed: noReason, tcpClose: noReason}
	var reasons *btf.Enum
	if spec == nil || spec.TypeByName("skb_drop_reason", &reasons) != nil {
		return n
	}
	n.known = true
	for _, v := range reasons.Values {
		name := strings.TrimPrefix(strings.TrimPrefix(v.Name, "SKB_DROP_REASON_"), "SKB_")
		switch v.Name {
		case "SKB_CONSUMED":
			n.consumed = uint32(v.Value)
		case "SKB_DROP_REASON_TCP_CLOSE":
			n.tcpClose = uint32(v.Value)
		}
		if _, dup := n.reasons[uint32(v.Value)]; !dup {
			n.reasons[uint32(v.Value)] = name
		}
	}
	var subsys *btf.Enum
	if spec.TypeByName("skb_drop_reason_subsys", &subsys) == nil {
		for _, v := range subsys.Values {
			n.subsys[uint32(v.Value)] = strings.TrimPrefix(v.Name, "SKB_DROP_REASON_SUBSYS_")
		}
	}
	return n
}

// consumedReason is SKB_CONSUMED for the BPF side, which skips it.
func (n *DropNames) consumedReason() uint32 {
	if n == nil {
		return noReason
	}
	return n.consumed
}

// tcpCloseReason is SKB_DROP_REASON_TCP_CLOSE for the BPF side, which
// skips a FIN or ACK dropped so by a socket already closed.
func (n *DropNames) tcpCloseReason() uint32 {
	if n == nil {
		return noReason
	}
	return n.tcpClose
}

// Known reports whether the kernel's BTF has enum skb_drop_reason.
func (n *DropNames) Known() bool { return n != nil && n.known }

// Reason names a drop reason the way the kernel's enum does, without its
// SKB_DROP_REASON_ prefix: NETFILTER_DROP, QDISC_DROP, NO_SOCKET. A
// subsystem's reason reads SUBSYS:code; a number the enum lacks stays a
// number.
func (n *DropNames) Reason(raw uint32) string {
	if n == nil {
		return strconv.FormatUint(uint64(raw), 10)
	}
	if sub := raw & subsysMask; sub != 0 {
		name := n.subsys[sub>>subsysShift]
		if name == "" {
			name = strconv.FormatUint(uint64(sub>>subsysShift), 10)
		}
		return name + ":" + strconv.FormatUint(uint64(raw&^subsysMask), 10)
	}
	if s, ok := n.reasons[raw]; ok {
		return s
	}
	return strconv.FormatUint(uint64(raw), 10)
}

// Location names the kernel function at addr, from /proc/kallsyms. Drops
// happen at a few dozen places, so each new place is looked up on its own
// and remembered: a long-running agent keeps a few names, not the
// kernel's whole symbol table (megabytes), and a session without drops
// never reads it.
func (n *DropNames) Location(addr uint64) string {
	if addr == 0 {
		return ""
	}
	if n == nil {
		return "0x" + strconv.FormatUint(addr, 16)
	}
	n.locMu.Lock()
	defer n.locMu.Unlock()
	if name, ok := n.locs[addr]; ok {
		return name
	}
	name := symbolAt(addr)
	if n.locs == nil {
		n.locs = map[uint64]string{}
	}
	if len(n.locs) < maxLocations {
		n.locs[addr] = name
	}
	return name
}

// maxLocations bounds the names kept; past it a place is looked up again
// each time.
const maxLocations = 4096

// symbolAt names the text symbol of /proc/kallsyms that holds addr: the
// one with the highest address not above it. Without root the addresses
// read as zero and the location stays a number.
func symbolAt(addr uint64) string {
	best, bestAddr := "", uint64(0)
	f, err := os.Open("/proc/kallsyms")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Bytes()
			a, rest, ok := bytes.Cut(line, []byte{' '})
			if !ok || len(rest) < 3 || (rest[0] != 't' && rest[0] != 'T') {
				continue
			}
			sa, err := strconv.ParseUint(string(a), 16, 64)
			if err != nil || sa == 0 || sa > addr || sa < bestAddr || (sa == bestAddr && best != "") {
				continue
			}
			name := rest[2:]
			if i := bytes.IndexAny(name, " \t"); i >= 0 {
				name = name[:i]
			}
			best, bestAddr = string(name), sa
		}
	}
	if best == "" {
		return "0x" + strconv.FormatUint(addr, 16)
	}
	return best
}
