package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// kernel is one prepared (downloaded and unpacked) Debian kernel package.
type kernel struct {
	Label   string // what the user asked for: "6.1", "6.12" or a package name
	Package string // Debian package name
	Version string // Debian package version
	Release string // uname -r inside the guest
	Arch    string // Debian architecture: amd64 or arm64
	Dir     string // cache directory holding the unpacked package
	Fetched bool   // true when this run downloaded it (cold cache)
	PrepSec float64
}

func (k *kernel) vmlinuz() string { return filepath.Join(k.Dir, "root", "boot", "vmlinuz-"+k.Release) }
func (k *kernel) modDir() string  { return filepath.Join(k.Dir, "root", "lib", "modules", k.Release) }

// kernelSeries matches a label like "6.1" or "6.12" (amd64), or
// "arm64-6.12": the series, optionally after an architecture.
var kernelSeries = regexp.MustCompile(`^(?:(amd64|arm64)-)?([0-9]+\.[0-9]+)$`)

// labelSeries splits a series label into its architecture and series; ok
// is false for anything else (a package name).
func labelSeries(label string) (arch, series string, ok bool) {
	m := kernelSeries.FindStringSubmatch(label)
	if m == nil {
		return "", "", false
	}
	if m[1] == "" {
		m[1] = "amd64"
	}
	return m[1], m[2], true
}

// flavour is the Debian kernel flavour used for every label.
func flavour(arch string) string { return "cloud-" + arch + "-unsigned" }

// packageArch is the architecture a kernel package is built for, from its
// flavour ("...-cloud-arm64-unsigned").
var packageArchRE = regexp.MustCompile(`-(amd64|arm64)(?:-unsigned)?$`)

func packageArch(pkg string) string {
	if m := packageArchRE.FindStringSubmatch(pkg); m != nil {
		return m[1]
	}
	return "amd64"
}

// packagePattern returns the regular expression that selects the packages of
// one kernel series. "6.1" must not match "6.12": the series is followed by a
// dot or a dash.
func packagePattern(series, arch string) *regexp.Regexp {
	return regexp.MustCompile(`^linux-image-` + regexp.QuoteMeta(series) + `[.-][^ ]*-` + regexp.QuoteMeta(flavour(arch)) + `$`)
}

// naturalLess compares strings treating digit runs as numbers, so that
// "6.1.0-9" < "6.1.0-56" and "6.12.99" < "6.12.117".
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			i, j := digitRun(a), digitRun(b)
			na, _ := strconv.ParseUint(a[:i], 10, 64)
			nb, _ := strconv.ParseUint(b[:j], 10, 64)
			if na != nb {
				return na < nb
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// aptCandidates lists the package names apt knows for a series, newest last.
func aptCandidates(series, arch string) ([]string, error) {
	re := packagePattern(series, arch)
	out, err := exec.Command("apt-cache", "search", "--names-only", "^linux-image-"+regexp.QuoteMeta(series)+"[.-].*-"+flavour(arch)+"$").Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache search: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ")
		if re.MatchString(name) {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
	return names, nil
}

// aptCandidateVersion returns the version apt would download for pkg, a
// package of architecture arch (named pkg:arch, which apt needs for a
// foreign architecture).
func aptCandidateVersion(pkg, arch string) (string, error) {
	out, err := exec.Command("apt-cache", "policy", pkg+":"+arch).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache policy %s: %w", pkg, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "Candidate:"); ok {
			v = strings.TrimSpace(v)
			if v == "" || v == "(none)" {
				break
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("apt has no candidate version of %s", pkg)
}

// cachedFor lists complete cache entries for a label, newest last.
func cachedFor(cache, label string) []string {
	ents, _ := os.ReadDir(filepath.Join(cache, "kernels"))
	var re *regexp.Regexp
	if arch, series, ok := labelSeries(label); ok {
		re = packagePattern(series, arch)
	}
	var dirs []string
	for _, e := range ents {
		pkg, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		if (re != nil && re.MatchString(pkg)) || pkg == label {
			d := filepath.Join(cache, "kernels", e.Name())
			if _, err := os.Stat(filepath.Join(d, "complete")); err == nil {
				dirs = append(dirs, d)
			}
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return naturalLess(dirs[i], dirs[j]) })
	return dirs
}

// resolveKernel finds the package for a label with apt, downloads and unpacks
// it into the cache unless it is already there. With offline set, or when apt
// cannot resolve the label, the newest cached entry is used.
func resolveKernel(cache, label string, offline bool, logf func(string, ...any)) (*kernel, error) {
	start := time.Now()
	var pkg, ver string
	var aptErr error
	if !offline {
		pkg, ver, aptErr = aptResolve(label)
		if aptErr != nil && os.Geteuid() == 0 && len(cachedFor(cache, label)) == 0 {
			// Fresh machine: the package lists may never have been fetched,
			// nor the guest's architecture added to dpkg.
			if arch, _, ok := labelSeries(label); ok && !aptKnowsArch(arch) {
				logf("adding the %s architecture to dpkg", arch)
				if out, err := exec.Command("dpkg", "--add-architecture", arch).CombinedOutput(); err != nil {
					logf("dpkg --add-architecture %s failed: %v\n%s", arch, err, out)
				}
			}
			logf("apt could not resolve %s (%v); running apt-get update", label, aptErr)
			if out, err := exec.Command("apt-get", "update").CombinedOutput(); err != nil {
				logf("apt-get update failed: %v\n%s", err, out)
			}
			pkg, ver, aptErr = aptResolve(label)
		}
	}
	if offline || aptErr != nil {
		dirs := cachedFor(cache, label)
		if len(dirs) == 0 {
			if aptErr == nil {
				aptErr = errors.New("offline and nothing cached")
			}
			return nil, fmt.Errorf("kernel %s: %w", label, aptErr)
		}
		if aptErr != nil {
			logf("kernel %s: apt failed (%v); using cached %s", label, aptErr, filepath.Base(dirs[len(dirs)-1]))
		}
		k, err := loadCached(dirs[len(dirs)-1], label)
		if k != nil {
			k.PrepSec = time.Since(start).Seconds()
		}
		return k, err
	}
	dir := filepath.Join(cache, "kernels", pkg+"_"+sanitize(ver))
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		k, err := loadCached(dir, label)
		if k != nil {
			k.PrepSec = time.Since(start).Seconds()
		}
		return k, err
	}
	logf("kernel %s: downloading %s %s", label, pkg, ver)
	if err := fetchPackage(dir, pkg, ver); err != nil {
		// Stale package lists name a version the mirror has dropped:
		// refresh them once and resolve again.
		if os.Geteuid() != 0 {
			return nil, err
		}
		logf("kernel %s: %v; running apt-get update and retrying", label, err)
		if out, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
			return nil, fmt.Errorf("%w; apt-get update: %v\n%s", err, uerr, out)
		}
		if pkg, ver, err = aptResolve(label); err != nil {
			return nil, err
		}
		dir = filepath.Join(cache, "kernels", pkg+"_"+sanitize(ver))
		if err := fetchPackage(dir, pkg, ver); err != nil {
			return nil, err
		}
	}
	pruneOld(cache, label, dir, logf)
	k, err := loadCached(dir, label)
	if err != nil {
		return nil, err
	}
	k.Fetched = true
	k.PrepSec = time.Since(start).Seconds()
	logf("kernel %s: %s %s ready in %.1fs (release %s)", label, pkg, ver, k.PrepSec, k.Release)
	return k, nil
}

func aptResolve(label string) (pkg, ver string, err error) {
	if arch, series, ok := labelSeries(label); ok {
		names, err := aptCandidates(series, arch)
		if err != nil {
			return "", "", err
		}
		if len(names) == 0 {
			msg := fmt.Sprintf("apt knows no package matching %s", packagePattern(series, arch))
			if !aptKnowsArch(arch) {
				msg += fmt.Sprintf(" (apt has no %s packages: dpkg --add-architecture %s && apt-get update; scripts/deps.sh does it)", arch, arch)
			}
			return "", "", errors.New(msg)
		}
		pkg = names[len(names)-1]
	} else if strings.HasPrefix(label, "linux-image-") {
		pkg = label
	} else {
		return "", "", fmt.Errorf("kernel %q: want a series such as 6.1 or a linux-image-* package name", label)
	}
	ver, err = aptCandidateVersion(pkg, packageArch(pkg))
	return pkg, ver, err
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

// fetchPackage downloads pkg=ver with apt-get download and unpacks it into
// dir/root. The .deb is removed afterwards; only the unpacked tree is kept.
func fetchPackage(dir, pkg, ver string) error {
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return nil // another run fetched it meanwhile
	}
	os.RemoveAll(dir) // an incomplete leftover
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	dl, err := os.MkdirTemp(filepath.Dir(dir), ".download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dl)
	// apt drops privileges to _apt for downloads; let it write there.
	os.Chmod(dl, 0o777)
	cmd := exec.Command("apt-get", "download", "-q", pkg+":"+packageArch(pkg)+"="+ver)
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s=%s: %v\n%s", pkg, ver, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: expected one .deb, found %d", pkg, len(debs))
	}
	root := filepath.Join(dl, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %v\n%s", debs[0], err, out)
	}
	vmlinuz, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(vmlinuz) != 1 {
		return fmt.Errorf("%s: expected one boot/vmlinuz-*, found %d", pkg, len(vmlinuz))
	}
	rel := strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
	meta := fmt.Sprintf("package=%s\nversion=%s\nrelease=%s\n", pkg, ver, rel)
	if err := os.WriteFile(filepath.Join(dl, "meta"), []byte(meta), 0o644); err != nil {
		return err
	}
	if err := os.Remove(debs[0]); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dl, "complete"), nil, 0o644); err != nil {
		return err
	}
	if err := os.Rename(dl, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "complete")); serr == nil {
			return nil // a concurrent run won the race
		}
		return err
	}
	return nil
}

// pruneOld removes cached packages of the same series older than keep, so
// that the cache holds one kernel per series.
func pruneOld(cache, label, keep string, logf func(string, ...any)) {
	if _, _, ok := labelSeries(label); !ok {
		return
	}
	for _, d := range cachedFor(cache, label) {
		if d != keep {
			logf("kernel %s: removing superseded %s from the cache", label, filepath.Base(d))
			os.RemoveAll(d)
		}
	}
}

func loadCached(dir, label string) (*kernel, error) {
	b, err := os.ReadFile(filepath.Join(dir, "meta"))
	if err != nil {
		return nil, err
	}
	k := &kernel{Label: label, Dir: dir}
	for _, line := range strings.Split(string(b), "\n") {
		key, val, _ := strings.Cut(line, "=")
		switch key {
		case "package":
			k.Package = val
		case "version":
			k.Version = val
		case "release":
			k.Release = val
		}
	}
	if k.Package == "" || k.Release == "" {
		return nil, fmt.Errorf("%s: incomplete meta file", dir)
	}
	k.Arch = packageArch(k.Package)
	return k, nil
}

// aptKnowsArch reports whether dpkg is set up for packages of arch: the
// native architecture, or a foreign one added with --add-architecture.
func aptKnowsArch(arch string) bool {
	native, _ := exec.Command("dpkg", "--print-architecture").Output()
	foreign, _ := exec.Command("dpkg", "--print-foreign-architectures").Output()
	return slices.Contains(strings.Fields(string(native)+" "+string(foreign)), arch)
}

// moduleIndex maps module names (dashes folded to underscores) to files.
type moduleIndex struct {
	k       *kernel
	files   map[string]string
	builtin map[string]bool
}

func modName(path string) string {
	b := filepath.Base(path)
	for _, suf := range []string{".ko.xz", ".ko.zst", ".ko.gz", ".ko"} {
		if strings.HasSuffix(b, suf) {
			b = strings.TrimSuffix(b, suf)
			break
		}
	}
	return strings.ReplaceAll(b, "-", "_")
}

func newModuleIndex(k *kernel) (*moduleIndex, error) {
	mi := &moduleIndex{k: k, files: map[string]string{}, builtin: map[string]bool{}}
	base := k.modDir()
	err := filepath.WalkDir(filepath.Join(base, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.Contains(d.Name(), ".ko") {
			return nil
		}
		if strings.HasSuffix(p, ".ko") {
			// A decompressed copy made by an earlier run; keep the
			// compressed name as the canonical one if both exist.
			if _, ok := mi.files[modName(p)]; ok {
				return nil
			}
		}
		mi.files[modName(p)] = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	if f, err := os.Open(filepath.Join(base, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			mi.builtin[modName(sc.Text())] = true
		}
		f.Close()
	}
	return mi, nil
}

// plainKO returns the path of an uncompressed copy of the module file,
// decompressing it next to the original the first time (busybox insmod
// cannot load compressed modules).
func plainKO(p string) (string, error) {
	if strings.HasSuffix(p, ".ko") {
		return p, nil
	}
	var tool string
	switch {
	case strings.HasSuffix(p, ".ko.xz"):
		tool = "xz"
	case strings.HasSuffix(p, ".ko.zst"):
		tool = "zstd"
	case strings.HasSuffix(p, ".ko.gz"):
		tool = "gzip"
	default:
		return "", fmt.Errorf("%s: unknown module compression", p)
	}
	out := p[:strings.LastIndex(p, ".ko")+3]
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	data, err := exec.Command(tool, "-dc", p).Output()
	if err != nil {
		return "", fmt.Errorf("%s -dc %s: %w", tool, p, err)
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return "", err
	}
	return out, os.Rename(tmp, out)
}

// moduleDepends reads the "depends=" entry of a module's .modinfo section.
func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, strings.ReplaceAll(d, "-", "_"))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}

// resolve returns the module files to load, dependencies first. Names that
// are built into the kernel are skipped. Unknown names are reported in
// missing rather than failing, so one list can serve several kernels.
func (mi *moduleIndex) resolve(names []string) (order []string, missing []string, err error) {
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(n string) error {
		n = strings.ReplaceAll(n, "-", "_")
		switch state[n] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", n)
		case 2:
			return nil
		}
		if mi.builtin[n] {
			state[n] = 2
			return nil
		}
		p, ok := mi.files[n]
		if !ok {
			missing = append(missing, n)
			state[n] = 2
			return nil
		}
		state[n] = 1
		plain, err := plainKO(p)
		if err != nil {
			return err
		}
		deps, err := moduleDepends(plain)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, plain)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, nil, err
		}
	}
	return order, missing, nil
}
