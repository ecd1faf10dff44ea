package loader

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/sendtrace/sendtrace/internal/testutil"
)

// Drop reasons are named from the kernel's own enum, whose numbers differ
// per version; a subsystem's reason carries its subsystem's name.
func TestDropReasonNames(t *testing.T) {
	reasons := &btf.Enum{Name: "skb_drop_reason", Size: 4, Values: []btf.EnumValue{
		{Name: "SKB_NOT_DROPPED_YET", Value: 0}, {Name: "SKB_CONSUMED", Value: 1},
		{Name: "SKB_DROP_REASON_NOT_SPECIFIED", Value: 2}, {Name: "SKB_DROP_REASON_NETFILTER_DROP", Value: 12},
		{Name: "SKB_DROP_REASON_QDISC_DROP", Value: 64},
	}}
	subsys := &btf.Enum{Name: "skb_drop_reason_subsys", Size: 4, Values: []btf.EnumValue{
		{Name: "SKB_DROP_REASON_SUBSYS_CORE", Value: 0}, {Name: "SKB_DROP_REASON_SUBSYS_OPENVSWITCH", Value: 3},
	}}
	b, err := btf.NewBuilder([]btf.Type{reasons, subsys}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	n := newDropNames(spec)
	if !n.Known() || n.consumedReason() != 1 {
		t.Fatalf("known %v consumed %d", n.Known(), n.consumedReason())
	}
	for raw, want := range map[uint32]string{
		12: "NETFILTER_DROP", 64: "QDISC_DROP", 2: "NOT_SPECIFIED", 99: "99",
		3<<16 | 5: "OPENVSWITCH:5", 7<<16 | 1: "7:1",
	} {
		if got := n.Reason(raw); got != want {
			t.Errorf("Reason(%#x) = %q, want %q", raw, got, want)
		}
	}
	// A kernel without the enum (before 5.17) names nothing, and the
	// program is told no number means "consumed".
	none := newDropNames(nil)
	if none.Known() || none.consumedReason() != noReason || none.Reason(12) != "12" {
		t.Errorf("without BTF: %+v", none)
	}
	var nilNames *DropNames
	if nilNames.Reason(5) != "5" || nilNames.Location(0x10) != "0x10" {
		t.Error("a nil DropNames must leave numbers as numbers")
	}
}

// A drop's location is named from /proc/kallsyms: an address inside a
// function names the function.
func TestDropLocation(t *testing.T) {
	testutil.RequireRoot(t)
	b, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	var addr uint64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "kfree_skb_list_reason" {
			addr, _ = strconv.ParseUint(f[0], 16, 64)
		}
	}
	if addr == 0 {
		t.Fatal("kfree_skb_list_reason not in /proc/kallsyms")
	}
	n := newDropNames(nil)
	if got := n.Location(addr + 5); got != "kfree_skb_list_reason" {
		t.Errorf("Location(kfree_skb_list_reason+5) = %q", got)
	}
}
