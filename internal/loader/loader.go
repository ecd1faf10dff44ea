// Package loader plans which kernel hook serves each layer, loads only the
// programs it will attach, and hands out the ring buffer and the exact
// counters. Every decision is made by trying: a hook is used when its
// program loads and attaches on this kernel, never because of a version.
package loader

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/session"
)

// Config is what the loader needs from a session: its options, and the
// pid whose own sends are never traced.
type Config struct {
	session.Options
	SelfPID uint32
}

// candidate is one way to serve a layer: a set of programs that must all
// load and attach.
type candidate struct {
	hook  string
	why   string
	progs []attachment
}

type attachment struct {
	prog   string // program name in the object
	attach func(*ebpf.Program) (link.Link, error)
}

func tracing(prog string) attachment {
	return attachment{prog: prog, attach: func(p *ebpf.Program) (link.Link, error) {
		return link.AttachTracing(link.TracingOptions{Program: p})
	}}
}

func kprobe(prog, symbol string, ret bool) attachment {
	return attachment{prog: prog, attach: func(p *ebpf.Program) (link.Link, error) {
		if ret {
			return link.Kretprobe(symbol, p, nil)
		}
		return link.Kprobe(symbol, p, nil)
	}}
}

// layerPlan is one layer and the ways to serve it, best first.
type layerPlan struct {
	layer      string
	candidates []candidate
}

func plan() []layerPlan {
	return []layerPlan{
		{session.LayerSendReturn, []candidate{
			{"tp_btf/sock_send_length", "the tracepoint after every protocol's sendmsg (6.3+)",
				[]attachment{tracing("send_length")}},
			{"fexit/tcp_sendmsg,udp_sendmsg,udpv6_sendmsg", "no sock_send_length tracepoint; fexit sees the return value",
				[]attachment{tracing("fexit_tcp_sendmsg"), tracing("fexit_udp_sendmsg"), tracing("fexit_udpv6_sendmsg")}},
			{"kretprobe/tcp_sendmsg,udp_sendmsg,udpv6_sendmsg", "neither the tracepoint nor fexit; kprobe+kretprobe pairs",
				[]attachment{
					kprobe("kprobe_tcp_sendmsg", "tcp_sendmsg", false), kprobe("kretprobe_tcp_sendmsg", "tcp_sendmsg", true),
					kprobe("kprobe_udp_sendmsg", "udp_sendmsg", false), kprobe("kretprobe_udp_sendmsg", "udp_sendmsg", true),
					kprobe("kprobe_udpv6_sendmsg", "udpv6_sendmsg", false), kprobe("kretprobe_udpv6_sendmsg", "udpv6_sendmsg", true),
				}},
		}},
		{session.LayerSyscallExit, []candidate{
			{"tp_btf/sys_exit", "the only place that sees the errno the application got (seccomp, LSM, ECOMM)",
				[]attachment{tracing("sys_exit")}},
		}},
		{session.LayerRetransmit, []candidate{
			{"tp_btf/tcp_retransmit_skb,tcp_retransmit_synack", "every TCP retransmission, in segments, and a listener's SYN-ACK retransmits",
				[]attachment{tracing("retransmit"), tracing("retransmit_synack")}},
		}},
		{session.LayerDrop, []candidate{
			{"tp_btf/kfree_skb:rx_sk", "packets of traced sockets dropped on this host, with the kernel's reason, both ways (6.12+: the receiving socket is named)",
				[]attachment{tracing("drop_rx_sk")}},
			{"tp_btf/kfree_skb", "packets of traced sockets dropped on their way out, with the kernel's reason (5.17+); on their way in only when still tied to the socket",
				[]attachment{tracing("drop_skb_sk")}},
		}},
		{session.LayerErrorReport, []candidate{
			{"tp_btf/inet_sk_error_report", "sk_err being reported (5.14+)", []attachment{tracing("error_report")}},
			{"fentry/sock_def_error_report", "no error-report tracepoint (before 5.14): the inet sockets' error report function",
				[]attachment{tracing("fentry_error_report")}},
			{"kprobe/sock_def_error_report", "neither the tracepoint nor fentry: a kprobe on the inet sockets' error report function",
				[]attachment{kprobe("kprobe_error_report", "sock_def_error_report", false)}},
		}},
		{session.LayerReset, []candidate{
			{"tp_btf/tcp_receive_reset,tcp_send_reset", "resets received and sent",
				[]attachment{tracing("receive_reset"), tracing("send_reset")}},
		}},
		{session.LayerSockState, []candidate{
			{"tp_btf/inet_sock_set_state", "owners at connect, lifecycle, per-destination counters at close",
				[]attachment{tracing("set_state")}},
		}},
	}
}

// Programs holds loaded programs, their links and the shared maps.
type Programs struct {
	Plan session.Plan
	// RetransmitHasErr and SendResetHasReason are the tracepoint shapes
	// found in kernel BTF.
	RetransmitHasErr   bool
	SendResetHasReason bool
	// DropNames names drop reasons and locations for this kernel.
	DropNames *DropNames
	// SyscallProbe is what the syscall layer's liveness probe found.
	SyscallProbe SyscallProbe

	maps     maps
	links    []link.Link
	progs    []*ebpf.Program
	sysExit  int // index of the sys_exit program and link, or -1
	seed     *ebpf.Program
	openTCP  *ebpf.Program
	seedLink *link.Iter
	seedPass uint32
	tcpLink  *link.Iter
	openUDP  *ebpf.Program
	udpLink  *link.Iter
}

type maps struct {
	Events   *ebpf.Map `ebpf:"events"`
	Owners   *ebpf.Map `ebpf:"owners"`
	Pending  *ebpf.Map `ebpf:"pending"`
	Totals   *ebpf.Map `ebpf:"totals"`
	DstStats *ebpf.Map `ebpf:"dst_stats"`
	Counters *ebpf.Map `ebpf:"counters"`
	SendArgs *ebpf.Map `ebpf:"send_args"`
	// AddrOwners holds owners found where a socket is no BTF pointer
	// (connect() by the syscall layer, the seeding iterator), read by
	// the async programs: one map for all of them.
	AddrOwners *ebpf.Map `ebpf:"addr_owners"`
	// ListenerOwners holds seeded listeners' owners for the sockets
	// accepted from them.
	ListenerOwners *ebpf.Map `ebpf:"listener_owners"`
	// ProcOwners holds the owners user space found through /proc for
	// events the kernel could not attribute.
	ProcOwners *ebpf.Map `ebpf:"proc_owners"`
	// WokenCgroups: cgroups whose first event woke the reader when
	// events are batched.
	WokenCgroups *ebpf.Map `ebpf:"woken_cgroups"`
	// Globals holds the liveness probe's variables, shared by every
	// program loaded.
	Globals   *ebpf.Map      `ebpf:".bss"`
	ProbeTID  *ebpf.Variable `ebpf:"probe_tid"`
	ProbeSeen *ebpf.Variable `ebpf:"probe_seen"`
	SeedPass  *ebpf.Variable `ebpf:"seed_pass"`
}

func (m *maps) replacements() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{
		"events": m.Events, "owners": m.Owners, "pending": m.Pending, "totals": m.Totals,
		"dst_stats": m.DstStats, "counters": m.Counters, "send_args": m.SendArgs,
		"addr_owners": m.AddrOwners, "listener_owners": m.ListenerOwners, "proc_owners": m.ProcOwners, "woken_cgroups": m.WokenCgroups, ".bss": m.Globals,
	}
}

func (m *maps) close() {
	for _, mp := range []*ebpf.Map{m.Events, m.Owners, m.Pending, m.Totals, m.DstStats, m.Counters, m.SendArgs, m.AddrOwners, m.ListenerOwners, m.ProcOwners, m.WokenCgroups, m.Globals} {
		if mp != nil {
			mp.Close()
		}
	}
}

// ErrNoBTF means neither the kernel nor the user supplied BTF.
var ErrNoBTF = errors.New("kernel BTF not found at /sys/kernel/btf/vmlinux")

// ErrPermission means the caller lacks the capabilities to load BPF.
var ErrPermission = errors.New("permission denied loading BPF")

// Load plans, loads and attaches. Layers whose every candidate fails are
// reported in Plan as degraded; Load fails only when nothing useful can run.
// An attached syscall layer must pass its liveness probe; when it does
// not, everything is loaded again as with --no-syscall-layer, since the
// socket layer's programs were built to leave their errors to it.
func Load(cfg Config) (*Programs, error) {
	t, err := load(cfg)
	if err != nil || !t.active(session.LayerSyscallExit) {
		return t, err
	}
	return t.settle(cfg, t.probeSyscallLayer(probeAttempts))
}

// settle keeps the programs when the probe saw the syscall layer, and
// otherwise loads everything again without it.
func (t *Programs) settle(cfg Config, probe SyscallProbe) (*Programs, error) {
	t.SyscallProbe = probe
	if probe.Seen {
		t.setHook(func(h *session.Hook) { h.Why += "; " + probe.String() })
		return t, nil
	}
	t.Close()
	cfg.NoSyscallLayer = true
	t, err := load(cfg)
	if err != nil {
		return nil, err
	}
	t.SyscallProbe = probe
	t.setHook(func(h *session.Hook) { *h = degradeSyscallLayer(probe) })
	return t, nil
}

// setHook changes the syscall layer's plan entry.
func (t *Programs) setHook(change func(*session.Hook)) {
	for i := range t.Plan {
		if t.Plan[i].Layer == session.LayerSyscallExit {
			change(&t.Plan[i])
		}
	}
}

func load(cfg Config) (*Programs, error) {
	if err := rlimit.RemoveMemlock(); err != nil && !errors.Is(err, unix.EPERM) {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	kernelTypes, err := kernelBTF(cfg.BTFPath)
	if err != nil {
		return nil, err
	}
	spec, store, err := chooseObject(kernelTypes, cfg.Disable)
	if err != nil {
		return nil, err
	}

	t := &Programs{sysExit: -1}
	t.RetransmitHasErr = tracepointArgs(kernelTypes, "tcp_retransmit_skb") >= 3
	t.SendResetHasReason = tracepointArgs(kernelTypes, "tcp_send_reset") >= 3
	t.DropNames = newDropNames(kernelTypes)

	c, err := buildConfig(cfg, t)
	if err != nil {
		return nil, err
	}
	if err := spec.Variables["cfg"].Set(c); err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	if ringBytes := cfg.RingMiB << 20; ringBytes != 0 {
		if ringBytes&(ringBytes-1) != 0 || ringBytes < uint32(os.Getpagesize()) {
			return nil, fmt.Errorf("ring buffer size %d: want a power of two of at least %d bytes", ringBytes, os.Getpagesize())
		}
		spec.Maps["events"].MaxEntries = ringBytes
	}

	// One BTF cache for every load: each program would otherwise parse
	// the kernel's BTF again to find its attach target.
	opts := ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: kernelTypes}, Cache: btf.NewCache()}
	if err := spec.LoadAndAssign(&t.maps, &opts); err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("%w: %v", ErrPermission, err)
		}
		return nil, fmt.Errorf("create maps: %w", err)
	}
	opts.MapReplacements = t.maps.replacements()

	ok := false
	defer func() {
		if !ok {
			t.Close()
		}
	}()

	// The syscall layer is decided first: whether the stack layer leaves
	// its failures for a syscall exit to join is a constant in its code.
	layers := plan()
	chosen := map[string]session.Hook{}
	for _, l := range layers {
		if l.layer != session.LayerSyscallExit {
			continue
		}
		ch := t.choose(spec, &opts, l, cfg)
		chosen[l.layer] = ch
		if ch.Active {
			t.sysExit = len(t.links) - 1
			c.SyscallLayer = 1
			if err := spec.Variables["cfg"].Set(c); err != nil {
				return nil, fmt.Errorf("set config: %w", err)
			}
		}
	}
	for _, l := range layers {
		ch, ok := chosen[l.layer]
		if !ok {
			ch = t.choose(spec, &opts, l, cfg)
		}
		t.Plan = append(t.Plan, ch)
	}

	t.Plan = append(t.Plan, t.loadSeeding(spec, &opts, cfg), store)

	t.openTCP, err = loadOne(spec, &opts, "open_tcp_counters")
	tcpChoice := session.Hook{Layer: session.LayerOpenCounter}
	if err == nil {
		t.tcpLink, err = link.AttachIter(link.IterOptions{Program: t.openTCP})
	}
	if err != nil {
		tcpChoice.Why = "per-destination counters cover closed sockets only"
		tcpChoice.Tried = []string{fmt.Sprintf("iter/tcp: %v", err)}
	} else {
		tcpChoice.Hook, tcpChoice.Active, tcpChoice.Why = "iter/tcp", true, "counters of sockets still open when the session stops"
	}
	t.Plan = append(t.Plan, tcpChoice)

	if cfg.CountSends {
		// Only send counts need it; a kernel without iter/udp loses the
		// counts of UDP sockets still open at the end, nothing else.
		if t.openUDP, err = loadOne(spec, &opts, "open_udp_counters"); err == nil {
			t.udpLink, err = link.AttachIter(link.IterOptions{Program: t.openUDP})
		}
		if err != nil {
			t.Plan = append(t.Plan, session.Hook{Layer: "open-udp-counters", Why: "send counts of UDP sockets still open at the end are not reported",
				Tried: []string{fmt.Sprintf("iter/udp: %v", err)}})
		}
	}

	if !t.active(session.LayerSendReturn) && !t.active(session.LayerSyscallExit) {
		return nil, fmt.Errorf("no hook can see failed sends on this kernel: %s", strings.Join(t.triedFor(session.LayerSendReturn, session.LayerSyscallExit), "; "))
	}
	ok = true
	return t, nil
}

func (t *Programs) active(layer string) bool {
	for _, c := range t.Plan {
		if c.Layer == layer {
			return c.Active
		}
	}
	return false
}

func (t *Programs) triedFor(layers ...string) []string {
	var out []string
	for _, c := range t.Plan {
		for _, l := range layers {
			if c.Layer == l {
				out = append(out, c.Tried...)
			}
		}
	}
	return out
}

// choose serves a layer with its first candidate that loads and
// attaches, and says why, or why none did.
func (t *Programs) choose(spec *ebpf.CollectionSpec, opts *ebpf.CollectionOptions, l layerPlan, cfg Config) session.Hook {
	choice := session.Hook{Layer: l.layer}
	if l.layer == session.LayerSyscallExit && cfg.NoSyscallLayer {
		choice.Off = true
		choice.Why = "off (--no-syscall-layer): errors made before the socket layer (seccomp, LSM, bad arguments) are not seen"
		return choice
	}
	for _, cand := range l.candidates {
		if session.HookDisabled(cand.hook, cfg.Disable) {
			choice.Tried = append(choice.Tried, cand.hook+": disabled by --disable-hook")
			continue
		}
		if err := t.tryCandidate(spec, opts, cand); err != nil {
			choice.Tried = append(choice.Tried, fmt.Sprintf("%s: %v", cand.hook, err))
			continue
		}
		choice.Hook, choice.Active, choice.Why = cand.hook, true, cand.why
		switch {
		case l.layer == session.LayerRetransmit && t.RetransmitHasErr:
			choice.Why += "; with the err argument (6.17+): failed retransmits too"
		case l.layer == session.LayerRetransmit:
			choice.Why += "; without the err argument: successful retransmits only"
		case l.layer == session.LayerReset && t.SendResetHasReason:
			choice.Why += "; with the reset reason"
		}
		return choice
	}
	choice.Why = "no hook for this layer on this kernel"
	if l.layer == session.LayerDrop {
		choice.Why = "drops on this host are not seen: kfree_skb has carried a reason only since 5.17"
		if !t.DropNames.Known() {
			choice.Why += " (this kernel's BTF has no enum skb_drop_reason)"
		}
	}
	return choice
}

// tryCandidate loads and attaches every program of a candidate, or none.
func (t *Programs) tryCandidate(spec *ebpf.CollectionSpec, opts *ebpf.CollectionOptions, cand candidate) error {
	var progs []*ebpf.Program
	var links []link.Link
	undo := func() {
		for _, l := range links {
			l.Close()
		}
		for _, p := range progs {
			p.Close()
		}
	}
	for _, a := range cand.progs {
		p, err := loadOne(spec, opts, a.prog)
		if err != nil {
			undo()
			return err
		}
		progs = append(progs, p)
		l, err := a.attach(p)
		if err != nil {
			undo()
			return fmt.Errorf("attach %s: %w", a.prog, short(err))
		}
		links = append(links, l)
	}
	t.progs = append(t.progs, progs...)
	t.links = append(t.links, links...)
	return nil
}

// loadOne loads a single program against the shared maps.
func loadOne(spec *ebpf.CollectionSpec, opts *ebpf.CollectionOptions, name string) (*ebpf.Program, error) {
	ps, ok := spec.Programs[name]
	if !ok {
		return nil, fmt.Errorf("program %s not in object", name)
	}
	one := &ebpf.CollectionSpec{
		Maps:      spec.Maps,
		Programs:  map[string]*ebpf.ProgramSpec{name: ps},
		Variables: spec.Variables,
		Types:     spec.Types,
		ByteOrder: spec.ByteOrder,
	}
	coll, err := ebpf.NewCollectionWithOptions(one, *opts)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, short(err))
	}
	p := coll.DetachProgram(name)
	coll.Close()
	return p, nil
}

// short trims a verifier log to its first line: the plan table has room
// for the reason, not the log.
func short(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		msg := ve.Cause.Error()
		// The log ends with statistics; the reason is the line before.
		for i := len(ve.Log) - 1; i >= 0; i-- {
			if l := strings.TrimSpace(ve.Log[i]); l != "" && !strings.HasPrefix(l, "processed ") {
				msg += ": " + l
				break
			}
		}
		return errors.New(msg)
	}
	return err
}

func kernelBTF(path string) (*btf.Spec, error) {
	if path != "" {
		s, err := btf.LoadSpec(path)
		if err != nil {
			return nil, fmt.Errorf("read --btf %s: %w (give a BTF file for exactly this kernel)", path, err)
		}
		return s, nil
	}
	s, err := btf.LoadKernelSpec()
	if err != nil {
		if _, statErr := os.Stat("/sys/kernel/btf/vmlinux"); statErr != nil {
			return nil, ErrNoBTF
		}
		return nil, fmt.Errorf("read kernel BTF: %w", err)
	}
	return s, nil
}

// tracepointArgs returns the number of arguments a BTF tracepoint passes,
// not counting the leading context pointer, or -1 when it is unknown.
func tracepointArgs(spec *btf.Spec, name string) int {
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_"+name, &td); err != nil {
		return -1
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return -1
	}
	fp, ok := ptr.Target.(*btf.FuncProto)
	if !ok {
		return -1
	}
	return len(fp.Params) - 1
}

// Events is the ring buffer the programs stream into.
func (t *Programs) Events() *ebpf.Map { return t.maps.Events }

// chooseObject returns the object this kernel's tracing programs can run:
// the one that keeps owners in socket local storage, or, where a tracing
// program cannot use it (before 5.11), the legacy one, which keeps them
// in a hash map. The choice is made by loading the socket-state program,
// which every session needs, and said in the plan.
func chooseObject(kernelTypes *btf.Spec, disable []string) (*ebpf.CollectionSpec, session.Hook, error) {
	store := session.Hook{Layer: session.LayerOwnerStore, Hook: "sk_storage", Active: true,
		Why: "socket local storage: each owner lives and dies with its socket; socket ids are the kernel's cookies"}
	spec, err := loadSendtrace()
	if err != nil {
		return nil, store, fmt.Errorf("parse embedded BPF object: %w", err)
	}
	var probe struct {
		P *ebpf.Program `ebpf:"set_state"`
	}
	var perr error
	if session.HookDisabled(store.Hook, disable) {
		// The legacy object on any kernel, so that its path is tested.
		perr = errors.New("disabled by --disable-hook")
	} else if perr = spec.LoadAndAssign(&probe, &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: kernelTypes}}); perr == nil {
		probe.P.Close()
		return spec, store, nil
	} else if errors.Is(perr, unix.EPERM) {
		return nil, store, fmt.Errorf("%w: %v", ErrPermission, perr)
	}
	if spec, err = loadSendtraceLegacy(); err != nil {
		return nil, store, fmt.Errorf("parse embedded legacy BPF object: %w", err)
	}
	store.Hook = "hash"
	store.Why = "tracing programs have no socket local storage here (before 5.11): owners are kept in a hash map by socket address, " +
		"at most 65,536 (the least recent give way), and a socket's id is its cookie when something asked for one (ss -e, SO_COOKIE), else (when nobody had asked before it was first seen) an id of its own for the socket's life: its address salted per session and mixed with the time it connected"
	store.Tried = []string{fmt.Sprintf("sk_storage: %v", perr)}
	return spec, store, nil
}

// seedHook is the owner-seeding layer's one hook.
const seedHook = "iter/task_file"

// loadSeeding loads and attaches the owner-seeding iterator, and says
// what is lost without it.
func (t *Programs) loadSeeding(spec *ebpf.CollectionSpec, opts *ebpf.CollectionOptions, cfg Config) session.Hook {
	h := session.Hook{Layer: session.LayerOwnerSeed}
	var err error
	if session.HookDisabled(seedHook, cfg.Disable) {
		err = errors.New("disabled by --disable-hook")
	} else if t.seed, err = loadOne(spec, opts, "seed_owners"); err == nil {
		t.seedLink, err = link.AttachIter(link.IterOptions{Program: t.seed})
	}
	if err != nil {
		h.Why = "connections and listeners older than the session have no owner in the kernel: under --pid, --comm or a workload filter their retransmits, resets, drops and error reports are attributed by /proc lookup (a socket whose process exited first is not found); without a filter they show no owner"
		h.Tried = []string{fmt.Sprintf("%s: %v", seedHook, err)}
		return h
	}
	h.Hook, h.Active, h.Why = seedHook, true, "attributes sockets that existed before the session, and listeners"
	return h
}

// SeedOwners runs the task_file iterator, attributing every open inet
// socket that has no owner yet. Each pass has its own number, so that a
// listener found in an earlier pass is not taken for a second one.
func (t *Programs) SeedOwners() error {
	if t.seedLink == nil {
		return nil
	}
	t.seedPass++
	if err := t.maps.SeedPass.Set(t.seedPass); err != nil {
		return fmt.Errorf("number the seeding pass: %w", err)
	}
	return runIter(t.seedLink)
}

func runIter(it *link.Iter) error {
	if it == nil {
		return nil
	}
	rd, err := it.Open()
	if err != nil {
		return fmt.Errorf("open iterator: %w", err)
	}
	defer rd.Close()
	_, err = io.Copy(io.Discard, rd)
	return err
}

// Detach stops every program from firing; maps stay readable.
func (t *Programs) Detach() {
	for _, l := range t.links {
		l.Close()
	}
	t.links = nil
}

// Close releases every link, program and map.
func (t *Programs) Close() {
	t.Detach()
	for _, it := range []*link.Iter{t.seedLink, t.tcpLink, t.udpLink} {
		if it != nil {
			it.Close()
		}
	}
	t.seedLink, t.tcpLink, t.udpLink = nil, nil, nil
	for _, p := range append(t.progs, t.seed, t.openTCP, t.openUDP) {
		if p != nil {
			p.Close()
		}
	}
	t.progs, t.seed, t.openTCP, t.openUDP = nil, nil, nil, nil
	t.maps.close()
}
