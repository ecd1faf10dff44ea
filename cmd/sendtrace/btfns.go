//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// vmlinuxBTF is where the kernel publishes its BTF, and where BTF
// tracepoints and fexit look up the type ids they attach to.
const vmlinuxBTF = "/sys/kernel/btf/vmlinux"

const btfNSEnv = "SENDTRACE_BTF_NS"

// withBTFFile makes a --btf file serve where the kernel's own BTF is not
// readable (hidden by a container or a read-only mount): attach targets
// are looked up there, not only CO-RE relocations. sendtrace re-runs
// itself in a private mount namespace with the file bind-mounted over
// /sys/kernel/btf/vmlinux, and exits with the child's status. It returns
// false when the current process should go on by itself.
func withBTFFile(path string) (bool, error) {
	if path == "" {
		return false, nil
	}
	// A file that is not there, or empty, is refused before anything
	// starts: serve would say where it serves, then end.
	if st, err := os.Stat(path); err != nil || st.Size() == 0 || st.IsDir() {
		if err == nil {
			err = errors.New("empty, or not a file")
		}
		return false, &exitError{code: 2, err: fmt.Errorf("read --btf %s: %w (give a BTF file for exactly this kernel)", path, err)}
	}
	if os.Getenv(btfNSEnv) == "child" {
		return false, bindBTF(path)
	}
	if _, err := btf.LoadKernelSpec(); err == nil {
		return false, nil // the kernel's own BTF is readable: use it for attaching
	}
	if _, err := os.Stat(vmlinuxBTF); err != nil {
		// No BTF in the kernel at all: tp_btf and fexit cannot attach,
		// whatever file is given. The loader says which layers degrade.
		return false, nil
	}
	self, err := os.Executable()
	if err != nil {
		return false, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), btfNSEnv+"=child")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGTERM}
	// The child handles SIGINT/SIGTERM itself; keep them from ending us
	// before it has printed its summary.
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	// SIGHUP is the child's to answer (serve goes on; the others end):
	// pass it on rather than die of it and take the child along.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err = cmd.Start(); err == nil {
		go func() {
			for s := range hup {
				_ = cmd.Process.Signal(s)
			}
		}()
		err = cmd.Wait()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal()) // as a shell reports it
		}
		return true, &exitError{code: code, err: errSilent}
	}
	if err != nil {
		return true, fmt.Errorf("run in a private mount namespace for --btf: %w", err)
	}
	return true, nil
}

func bindBTF(path string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private for --btf: %w", err)
	}
	if err := unix.Mount(path, vmlinuxBTF, "", unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("bind --btf %s over %s: %w", path, vmlinuxBTF, err)
	}
	return nil
}

// checkKernelBTF says in one line what to do when the kernel's BTF file
// exists but holds no BTF: emptied or hidden by a mount (a container's
// /sys, a bind-mounted empty file), which the loader would report as a
// parsing error. A missing file is left to the loader (ErrNoBTF).
func checkKernelBTF(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	advice := "pass --btf FILE with BTF for exactly this kernel"
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("kernel BTF at %s cannot be read (%v): %s", path, errors.Unwrap(err), advice)}
	}
	defer f.Close()
	var hdr [24]byte // struct btf_header
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		what := "is empty"
		if !errors.Is(err, io.EOF) {
			what = "is cut short"
		}
		return &exitError{code: 2, err: fmt.Errorf("kernel BTF at %s %s (hidden or emptied by a mount?): %s", path, what, advice)}
	}
	if m := uint16(hdr[0]) | uint16(hdr[1])<<8; m != 0xeb9f && m != 0x9feb {
		return &exitError{code: 2, err: fmt.Errorf("kernel BTF at %s is not BTF (hidden by a mount?): %s", path, advice)}
	}
	return nil
}
