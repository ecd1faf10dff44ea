package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// userland is the guest's user space besides the caller's files: a static
// busybox for init, dash as /bin/sh, and iproute2's ip and nftables' nft
// with their shared libraries. A guest of the host's architecture gets the
// host's own programs. A guest of another architecture gets Debian's
// packages of the same names built for it, unpacked into the cache (root).
type userland struct {
	arch    string
	root    string // "" for the host's own files
	busybox string
	// tools maps a guest path to the file it is copied from.
	tools map[string]string
}

// hostArch is the Debian name of the architecture the runner runs on.
func hostArch() string { return runtime.GOARCH }

// hostUserland finds the host's busybox, dash, ip and nft.
func hostUserland() (*userland, error) {
	busybox, err := findStaticBusybox("")
	if err != nil {
		return nil, err
	}
	u := &userland{arch: hostArch(), busybox: busybox, tools: map[string]string{}}
	// Commands run under the host's dash as /bin/sh when there is one:
	// busybox's shell runs its own applets (ip among them) before anything
	// on PATH, which would hide iproute2's ip.
	if _, err := os.Stat("/usr/bin/dash"); err == nil {
		u.tools["usr/bin/dash"] = "/usr/bin/dash"
	}
	for _, tool := range []string{"ip", "nft"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			for _, d := range []string{"/usr/sbin", "/sbin"} {
				if _, e := os.Stat(filepath.Join(d, tool)); e == nil {
					p, err = filepath.Join(d, tool), nil
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s not found on the host (apt-get install iproute2 nftables)", tool)
		}
		u.tools["usr/sbin/"+tool] = p
	}
	return u, nil
}

func findStaticBusybox(root string) (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		p = filepath.Join(root, p)
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, pr := range f.Progs {
			if pr.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p, nil
		}
	}
	if root != "" {
		return "", fmt.Errorf("no static busybox under %s", root)
	}
	return "", errors.New("no static busybox: apt-get install busybox-static")
}

// foreignPackages names the Debian packages a guest of another
// architecture needs: the programs, and the libraries they load, found
// from the host's copies of the same programs (ldd, then dpkg -S), so the
// list follows the Debian release rather than being written down here.
func foreignPackages(host *userland) ([]string, error) {
	pkgs := []string{"busybox-static", "dash", "iproute2", "nftables"}
	var libs []string
	for _, p := range host.tools {
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", p, err)
		}
		for _, f := range strings.Fields(string(out)) {
			if strings.HasPrefix(f, "/") && !slices.Contains(libs, f) {
				libs = append(libs, f)
			}
		}
	}
	for _, lib := range libs {
		pkg, err := owningPackage(lib)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, pkg)
		}
	}
	slices.Sort(pkgs)
	return pkgs, nil
}

// owningPackage asks dpkg which package installed a file. On a merged-/usr
// system ldd may name /lib/... while dpkg recorded /usr/lib/..., or the
// other way round, so each spelling is tried.
func owningPackage(file string) (string, error) {
	tries := []string{file}
	if real, err := filepath.EvalSymlinks(file); err == nil && real != file {
		tries = append(tries, real)
	}
	for _, t := range slices.Clone(tries) {
		if rest, ok := strings.CutPrefix(t, "/usr/"); ok {
			tries = append(tries, "/"+rest)
		} else {
			tries = append(tries, "/usr"+t)
		}
	}
	for _, t := range tries {
		out, err := exec.Command("dpkg", "-S", t).Output()
		if err != nil {
			continue
		}
		line, _, _ := strings.Cut(string(out), "\n")
		pkg, _, ok := strings.Cut(line, ":")
		if ok && !strings.Contains(pkg, ",") {
			return strings.TrimSpace(pkg), nil
		}
	}
	return "", fmt.Errorf("dpkg -S: no package owns %s", file)
}

// prepareUserland returns the user space for guests of arch, fetching and
// unpacking the packages of a foreign architecture into the cache the
// first time (or when the list of packages changes).
func prepareUserland(cache, arch string, offline bool, logf func(string, ...any)) (*userland, error) {
	host, err := hostUserland()
	if err != nil {
		return nil, err
	}
	if arch == host.arch {
		return host, nil
	}
	dir := filepath.Join(cache, "userland", arch)
	var pkgs []string
	if !offline {
		if pkgs, err = foreignPackages(host); err != nil {
			return nil, err
		}
	}
	want := strings.Join(pkgs, "\n") + "\n"
	have, _ := os.ReadFile(filepath.Join(dir, "complete"))
	if len(have) == 0 || (!offline && string(have) != want) {
		if offline {
			return nil, fmt.Errorf("offline and no %s user space cached in %s", arch, dir)
		}
		logf("user space %s: downloading %s", arch, strings.Join(pkgs, " "))
		if err := fetchUserland(dir, arch, pkgs); err != nil {
			return nil, err
		}
	}
	u := &userland{arch: arch, root: filepath.Join(dir, "root"), tools: map[string]string{}}
	if u.busybox, err = findStaticBusybox(u.root); err != nil {
		return nil, err
	}
	for guest, cands := range map[string][]string{
		"usr/bin/dash": {"bin/dash", "usr/bin/dash"},
		"usr/sbin/ip":  {"bin/ip", "sbin/ip", "usr/bin/ip", "usr/sbin/ip"},
		"usr/sbin/nft": {"usr/sbin/nft", "sbin/nft"},
	} {
		for _, c := range cands {
			if p, err := inRoot(u.root, c); err == nil {
				u.tools[guest] = p
				break
			}
		}
		if u.tools[guest] == "" {
			return nil, fmt.Errorf("user space %s: no %s in %s", arch, path.Base(guest), u.root)
		}
	}
	return u, nil
}

// fetchUserland downloads pkgs for arch with apt-get and unpacks them into
// dir/root.
func fetchUserland(dir, arch string, pkgs []string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	dl := filepath.Join(dir, "debs")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return err
	}
	// apt drops privileges to _apt for downloads; let it write there.
	os.Chmod(dl, 0o777)
	// These come from the machine's own apt (the packages of its
	// release), which needs the architecture added to dpkg.
	if !aptKnowsArch(arch) {
		if os.Geteuid() != 0 {
			return fmt.Errorf("apt has no %s packages: dpkg --add-architecture %s && apt-get update (as root; scripts/deps.sh does it)", arch, arch)
		}
		logf("adding the %s architecture to dpkg and updating apt's lists", arch)
		if out, err := exec.Command("dpkg", "--add-architecture", arch).CombinedOutput(); err != nil {
			return fmt.Errorf("dpkg --add-architecture %s: %v\n%s", arch, err, out)
		}
		if out, err := exec.Command("apt-get", "update", "-q").CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get update: %v\n%s", err, out)
		}
	}
	args := []string{"download", "-q"}
	for _, p := range pkgs {
		args = append(args, p+":"+arch)
	}
	cmd := exec.Command("apt-get", args...)
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download (%s packages): %v\n%s", arch, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != len(pkgs) {
		return fmt.Errorf("apt-get download: %d packages asked for, %d .deb files", len(pkgs), len(debs))
	}
	for _, d := range debs {
		if out, err := exec.Command("dpkg-deb", "-x", d, filepath.Join(dir, "root")).CombinedOutput(); err != nil {
			return fmt.Errorf("dpkg-deb -x %s: %v\n%s", d, err, out)
		}
	}
	if err := os.RemoveAll(dl); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "complete"), []byte(strings.Join(pkgs, "\n")+"\n"), 0o644)
}

// inRoot resolves rel inside root, following symbolic links as the guest
// will, absolute ones included, and returns the host path of the file.
func inRoot(root, rel string) (string, error) {
	p := clean(rel)
	for hops := 0; hops < 40; hops++ {
		host := filepath.Join(root, p)
		st, err := os.Lstat(host)
		if err != nil {
			return "", err
		}
		if st.Mode()&os.ModeSymlink == 0 {
			return host, nil
		}
		t, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		if path.IsAbs(t) {
			p = clean(t)
		} else {
			p = clean(path.Join(path.Dir(p), t))
		}
	}
	return "", fmt.Errorf("%s: too many symbolic links", rel)
}

// libDirs are where the dynamic loader of Debian's multiarch layout looks,
// relative to the root.
func libDirs(m elf.Machine) []string {
	triplet := map[elf.Machine]string{elf.EM_AARCH64: "aarch64-linux-gnu", elf.EM_X86_64: "x86_64-linux-gnu"}[m]
	return []string{"lib/" + triplet, "usr/lib/" + triplet, "lib", "usr/lib"}
}

// addForeign copies the program at host into the guest and, when it is
// dynamically linked, its loader and every library it needs (DT_NEEDED,
// transitively), found in root at the paths the guest's loader searches.
func (r *initramfs) addForeign(root, host, guest string) error {
	if err := r.addPlain(host, guest); err != nil {
		return err
	}
	queue := []string{host}
	for len(queue) > 0 {
		f, err := elf.Open(queue[0])
		if err != nil {
			return err
		}
		queue = queue[1:]
		for _, p := range f.Progs {
			if p.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, p.Filesz)
			p.ReadAt(b, 0)
			interp := string(bytes.TrimRight(b, "\x00"))
			src, err := inRoot(root, interp)
			if err != nil {
				f.Close()
				return fmt.Errorf("%s needs the loader %s: %w", host, interp, err)
			}
			if err := r.addPlain(src, interp); err != nil {
				f.Close()
				return err
			}
		}
		needed, err := f.ImportedLibraries()
		machine := f.Machine
		f.Close()
		if err != nil {
			return err
		}
		for _, so := range needed {
			found := false
			for _, d := range libDirs(machine) {
				g := path.Join(d, so)
				if _, ok := r.files[g]; ok {
					found = true
					break
				}
				src, err := inRoot(root, g)
				if err != nil {
					continue
				}
				if err := r.addPlain(src, g); err != nil {
					return err
				}
				queue = append(queue, src)
				found = true
				break
			}
			if !found {
				return fmt.Errorf("%s needs %s, which no package in %s has", host, so, root)
			}
		}
	}
	return nil
}

// addPlain copies one file, with no library lookup.
func (r *initramfs) addPlain(host, guest string) error {
	st, err := os.Stat(host)
	if err != nil {
		return err
	}
	guest = clean(guest)
	r.mkdirAll(path.Dir(guest))
	r.files[guest] = &entry{mode: sIFREG | uint32(st.Mode().Perm()), src: host}
	return nil
}

// add puts the user space into the initramfs.
func (u *userland) add(r *initramfs) error {
	if u.root == "" {
		if err := r.addFile(u.busybox, "bin/busybox"); err != nil {
			return err
		}
	} else if err := r.addPlain(u.busybox, "bin/busybox"); err != nil {
		return err
	}
	for guest, src := range u.tools {
		var err error
		if u.root == "" {
			err = r.addFile(src, guest)
		} else {
			err = r.addForeign(u.root, src, guest)
		}
		if err != nil {
			return err
		}
	}
	if _, ok := u.tools["usr/bin/dash"]; ok {
		r.addSymlink("bin/sh", "/usr/bin/dash")
	}
	return nil
}
