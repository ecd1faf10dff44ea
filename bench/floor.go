package main

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// floorSession holds empty BPF programs (return 0, nothing else) on BTF
// tracepoints. What they cost is what the kernel charges for a program
// being there at all: the tracepoint's dispatch, the call into the
// program and, for sys_exit, the slow system-call exit path that any
// probe on it turns on for every task. No tracer on these hooks can cost
// less, so it separates sendtrace's own cost from the hooks' floor.
type floorSession struct {
	progs []*ebpf.Program
	links []link.Link
}

func attachFloor(tracepoints ...string) (*floorSession, error) {
	f := &floorSession{}
	for _, tp := range tracepoints {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         "floor",
			Type:         ebpf.Tracing,
			AttachType:   ebpf.AttachTraceRawTp,
			AttachTo:     tp,
			License:      "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		})
		if err != nil {
			_ = f.stop()
			return nil, fmt.Errorf("load an empty tp_btf/%s program: %w", tp, err)
		}
		f.progs = append(f.progs, p)
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			_ = f.stop()
			return nil, fmt.Errorf("attach tp_btf/%s: %w", tp, err)
		}
		f.links = append(f.links, l)
	}
	return f, nil
}

func (f *floorSession) stop() error {
	var errs []error
	for _, l := range f.links {
		errs = append(errs, l.Close())
	}
	for _, p := range f.progs {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
