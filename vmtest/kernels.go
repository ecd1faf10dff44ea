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

// kernel is one prepared (downloaded and unpacked) Debian kernel.
type kernel struct {
	Label   string // what the user asked for: "6.1", "arm64-7.2", "latest" or a package name
	Package string // Debian package name of the image (linux-image-...)
	Version string // Debian package version
	Release string // uname -r inside the guest
	Arch    string // Debian architecture: amd64 or arm64
	Dir     string // cache directory holding the unpacked package(s)
	// Also names further labels whose commands this guest runs: for
	// "latest", the newest pinned kernel of its architecture, so that it
	// runs the same matrix as that one.
	Also    []string
	Fetched bool // true when this run downloaded it (cold cache)
	PrepSec float64
	// Paths inside Dir: boot/vmlinuz-R and lib/modules/R (one package),
	// or usr/lib/modules/R/vmlinuz.unsigned and usr/lib/modules/R (the
	// kernel split into binary, modules and base packages, Debian 14).
	vmlinuzPath, modPath string
}

func (k *kernel) vmlinuz() string { return filepath.Join(k.Dir, "root", k.vmlinuzPath) }
func (k *kernel) modDir() string  { return filepath.Join(k.Dir, "root", k.modPath) }

// kernelSeries matches a label like "6.1" or "6.12" (amd64), or
// "arm64-6.12": the series, optionally after an architecture; "latest"
// stands for the newest kernel packaged for the architecture, release
// candidates included.
var kernelSeries = regexp.MustCompile(`^(?:(amd64|arm64)-)?([0-9]+\.[0-9]+|latest)$`)

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

// packageArch is the architecture a kernel package is built for, from its
// flavour ("...-cloud-arm64-unsigned").
var packageArchRE = regexp.MustCompile(`-(amd64|arm64)(?:-unsigned)?$`)

func packageArch(pkg string) string {
	if m := packageArchRE.FindStringSubmatch(pkg); m != nil {
		return m[1]
	}
	return "amd64"
}

// packagePattern returns the regular expression that selects the image
// packages of one kernel series of the cloud flavour: Debian 11 and 12
// name them linux-image-R-unsigned (besides the signed linux-image-R),
// Debian 14 linux-image-R only. "6.1" must not match "6.12": the series
// is followed by a dot, a dash or the flavour. "latest" matches every
// series.
func packagePattern(series, arch string) *regexp.Regexp {
	s := regexp.QuoteMeta(series) + `(?:[.-][^ ]*)?`
	if series == "latest" {
		s = `[0-9][^ ]*`
	}
	return regexp.MustCompile(`^linux-image-` + s + `-cloud-` + regexp.QuoteMeta(arch) + `(?:-unsigned)?$`)
}

// packageSeries is the series ("6.12") of a kernel image package.
var packageSeriesRE = regexp.MustCompile(`^linux-image-([0-9]+\.[0-9]+)[.+-]`)

func packageSeries(pkg string) string {
	if m := packageSeriesRE.FindStringSubmatch(pkg); m != nil {
		return m[1]
	}
	return ""
}

// packageRelease is the kernel release an image package installs.
func packageRelease(pkg string) string {
	return strings.TrimSuffix(strings.TrimPrefix(pkg, "linux-image-"), "-unsigned")
}

// splitPackaging reports whether pkg names a kernel that Debian ships in
// parts: linux-image-R then only depends on linux-binary-R (the signed
// image), linux-modules-R and linux-base-R (config, modules.builtin).
func splitPackaging(pkg string) bool { return !strings.HasSuffix(pkg, "-unsigned") }

// kernelDebs are the packages to download for the image package pkg: the
// -unsigned image itself, or the unsigned image, modules and base files
// of a split kernel.
func kernelDebs(pkg string) []string {
	if !splitPackaging(pkg) {
		return []string{pkg}
	}
	rel := packageRelease(pkg)
	return []string{"linux-binary-unsigned-" + rel, "linux-modules-" + rel, "linux-base-" + rel}
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

// debVersionCompare compares two Debian package versions as dpkg does
// (epoch, upstream version, revision; "~" sorts before anything, so
// 7.3~rc7-1 < 7.3-1 < 7.3.1-1). It returns -1, 0 or 1.
func debVersionCompare(a, b string) int {
	ea, ua, ra := splitDebVersion(a)
	eb, ub, rb := splitDebVersion(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := debPartCompare(ua, ub); c != 0 {
		return c
	}
	return debPartCompare(ra, rb)
}

func splitDebVersion(v string) (epoch int, upstream, revision string) {
	if e, rest, ok := strings.Cut(v, ":"); ok {
		epoch, _ = strconv.Atoi(e)
		v = rest
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// debOrder is the weight of one non-digit character in dpkg's comparison.
func debOrder(s string) int {
	switch {
	case s == "" || isDigit(s[0]):
		return 0
	case s[0] == '~':
		return -1
	case (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'):
		return int(s[0])
	default:
		return int(s[0]) + 256
	}
}

func debPartCompare(a, b string) int {
	for a != "" || b != "" {
		for (a != "" && !isDigit(a[0])) || (b != "" && !isDigit(b[0])) {
			oa, ob := debOrder(a), debOrder(b)
			if oa != ob {
				if oa < ob {
					return -1
				}
				return 1
			}
			a, b = a[1:], b[1:]
		}
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		i, j := digitRun(a), digitRun(b)
		if i != j {
			if i < j {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a[:i], b[:j]); c != 0 {
			return c
		}
		a, b = a[i:], b[j:]
	}
	return 0
}

// kernelChoice is one kernel apt offers: its image package and version.
type kernelChoice struct{ Package, Version string }

// aptKernels lists the kernels apt offers for a series ("latest": any) of
// the cloud flavour for arch, oldest first: one per release, the
// -unsigned image where there is one, a split kernel only when its
// unsigned binary package exists.
func aptKernels(a *aptState, series, arch string) ([]kernelChoice, error) {
	re := packagePattern(series, arch)
	names, err := a.search(`^linux-image-[0-9].*-cloud-` + arch + `(-unsigned)?$`)
	if err != nil {
		return nil, err
	}
	byRel := map[string]string{}
	for _, n := range names {
		if !re.MatchString(n) {
			continue
		}
		rel := packageRelease(n)
		if old, ok := byRel[rel]; !ok || !splitPackaging(n) && splitPackaging(old) {
			byRel[rel] = n
		}
	}
	// The version of a kernel is that of the package actually fetched.
	carrier := map[string]string{}
	var ask []string
	for _, p := range byRel {
		c := kernelDebs(p)[0]
		carrier[p] = c
		ask = append(ask, c)
	}
	if len(ask) == 0 {
		return nil, nil
	}
	vers, err := a.candidates(arch, ask...)
	if err != nil {
		return nil, err
	}
	var ks []kernelChoice
	for _, p := range byRel {
		if v, ok := vers[carrier[p]]; ok {
			ks = append(ks, kernelChoice{p, v})
		}
	}
	sort.Slice(ks, func(i, j int) bool {
		if c := debVersionCompare(ks[i].Version, ks[j].Version); c != 0 {
			return c < 0
		}
		return naturalLess(ks[i].Package, ks[j].Package)
	})
	return ks, nil
}

// aptResolve finds the package and version for a label that is not
// pinned: the newest of a series, or a package name's candidate.
func aptResolve(a *aptState, label string) (pkg, ver string, err error) {
	if arch, series, ok := labelSeries(label); ok {
		ks, err := aptKernels(a, series, arch)
		if err != nil {
			return "", "", err
		}
		if len(ks) == 0 {
			return "", "", fmt.Errorf("apt knows no package matching %s (sources: %s)", packagePattern(series, arch), a.sourcesFile())
		}
		k := ks[len(ks)-1]
		return k.Package, k.Version, nil
	}
	if !strings.HasPrefix(label, "linux-image-") {
		return "", "", fmt.Errorf("kernel %q: want a series such as 6.1, latest, or a linux-image-* package name", label)
	}
	pkg = label
	arch := packageArch(pkg)
	if splitPackaging(pkg) {
		// A signed image of Debian 11 or 12: take its -unsigned twin.
		if v, _ := a.candidates(arch, pkg+"-unsigned"); v[pkg+"-unsigned"] != "" {
			pkg += "-unsigned"
		}
	}
	carrier := kernelDebs(pkg)[0]
	vers, err := a.candidates(arch, carrier)
	if err != nil {
		return "", "", err
	}
	if vers[carrier] == "" {
		return "", "", fmt.Errorf("apt has no candidate version of %s", carrier)
	}
	return pkg, vers[carrier], nil
}

// cachedFor lists complete cache entries for a label (a series, latest or
// a package name), oldest first.
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
	sort.Slice(dirs, func(i, j int) bool {
		_, vi, _ := strings.Cut(filepath.Base(dirs[i]), "_")
		_, vj, _ := strings.Cut(filepath.Base(dirs[j]), "_")
		if c := debVersionCompare(vi, vj); c != 0 {
			return c < 0
		}
		return naturalLess(dirs[i], dirs[j])
	})
	return dirs
}

func kernelDir(cache, pkg, ver string) string {
	return filepath.Join(cache, "kernels", pkg+"_"+sanitize(ver))
}

// resolveKernel finds the package for a label, downloads and unpacks it
// into the cache unless it is already there. A label in the pin file
// (vmtest/kernels.pin) gets exactly the pinned version, unless
// o.unpinned; other labels get apt's newest. apt runs on the project's
// own state (apt.go); its lists are fetched when missing, and once more
// when a download fails. With o.offline only the cache is used.
func resolveKernel(o *options, label string, logf func(string, ...any)) (*kernel, error) {
	start := time.Now()
	done := func(k *kernel, err error) (*kernel, error) {
		if k != nil {
			k.PrepSec = time.Since(start).Seconds()
		}
		return k, err
	}
	pin, pinned := o.pins.get(label)
	pinned = pinned && !o.unpinned
	var pkg, ver string
	switch {
	case pinned:
		pkg, ver = pin.Package, pin.Version
		if dir := kernelDir(o.cache, pkg, ver); isComplete(dir) {
			return done(loadCached(dir, label))
		}
		if o.offline {
			dirs := cachedFor(o.cache, label)
			if len(dirs) == 0 {
				return nil, fmt.Errorf("kernel %s: offline, and the pinned %s %s is not cached", label, pkg, ver)
			}
			logf("kernel %s: offline, and the pinned %s is not cached; using %s", label, ver, filepath.Base(dirs[len(dirs)-1]))
			return done(loadCached(dirs[len(dirs)-1], label))
		}
	case o.offline:
		dirs := cachedFor(o.cache, label)
		if len(dirs) == 0 {
			return nil, fmt.Errorf("kernel %s: offline and nothing cached", label)
		}
		return done(loadCached(dirs[len(dirs)-1], label))
	default:
		if err := o.apt.ensure(logf); err != nil {
			return nil, err
		}
		var err error
		if pkg, ver, err = aptResolve(o.apt, label); err != nil {
			dirs := cachedFor(o.cache, label)
			if len(dirs) == 0 {
				return nil, fmt.Errorf("kernel %s: %w", label, err)
			}
			logf("kernel %s: apt failed (%v); using cached %s", label, err, filepath.Base(dirs[len(dirs)-1]))
			return done(loadCached(dirs[len(dirs)-1], label))
		}
		if dir := kernelDir(o.cache, pkg, ver); isComplete(dir) {
			return done(loadCached(dir, label))
		}
	}
	if err := o.apt.ensure(logf); err != nil {
		return nil, err
	}
	dir := kernelDir(o.cache, pkg, ver)
	logf("kernel %s: downloading %s %s", label, strings.Join(kernelDebs(pkg), " "), ver)
	if err := fetchKernel(o.apt, dir, pkg, ver); err != nil {
		// Stale lists name a version the archive has dropped, or do
		// not know a newly pinned one yet: refresh them once.
		logf("kernel %s: %v; updating the package lists and retrying", label, err)
		if uerr := o.apt.update(logf); uerr != nil {
			return nil, fmt.Errorf("%w; %v", err, uerr)
		}
		if !pinned {
			var rerr error
			if pkg, ver, rerr = aptResolve(o.apt, label); rerr != nil {
				return nil, rerr
			}
			dir = kernelDir(o.cache, pkg, ver)
		}
		if err := fetchKernel(o.apt, dir, pkg, ver); err != nil {
			if pinned {
				return nil, fmt.Errorf("kernel %s: the pinned %s %s (%s) cannot be downloaded: %w\n"+
					"Debian's archive keeps only current versions: `vmtest/run.sh pin -w` pins the newest of each series in %s",
					label, pkg, ver, pin.Suite, err, o.pinsName)
			}
			return nil, err
		}
	}
	pruneOld(o, pkg, dir, logf)
	k, err := loadCached(dir, label)
	if err != nil {
		return nil, err
	}
	k.Fetched = true
	k.PrepSec = time.Since(start).Seconds()
	logf("kernel %s: %s %s ready in %.1fs (release %s)", label, pkg, ver, k.PrepSec, k.Release)
	return k, nil
}

func isComplete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "complete"))
	return err == nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

// fetchKernel downloads the packages of the image package pkg at version
// ver with apt and unpacks them into dir/root. The .debs are removed
// afterwards; only the unpacked tree is kept.
func fetchKernel(a *aptState, dir, pkg, ver string) error {
	if isComplete(dir) {
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
	// apt may drop privileges to _apt for downloads; let it write there.
	os.Chmod(dl, 0o777)
	pkgs := kernelDebs(pkg)
	if err := a.download(dl, packageArch(pkg), ver, pkgs); err != nil {
		return err
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != len(pkgs) {
		return fmt.Errorf("apt-get download %s: expected %d .deb files, found %d", pkg, len(pkgs), len(debs))
	}
	root := filepath.Join(dl, "root")
	for _, d := range debs {
		if out, err := exec.Command("dpkg-deb", "-x", d, root).CombinedOutput(); err != nil {
			return fmt.Errorf("dpkg-deb -x %s: %v\n%s", d, err, out)
		}
		if err := os.Remove(d); err != nil {
			return err
		}
	}
	rel, vmlinuz, mods, err := kernelLayout(root)
	if err != nil {
		return fmt.Errorf("%s %s: %w", pkg, ver, err)
	}
	// arm64's base package carries device trees (40 MiB); qemu's virt
	// board makes its own.
	os.RemoveAll(filepath.Join(root, mods, "dtb"))
	meta := fmt.Sprintf("package=%s\nversion=%s\nrelease=%s\nvmlinuz=%s\nmodules=%s\n", pkg, ver, rel, vmlinuz, mods)
	if err := os.WriteFile(filepath.Join(dl, "meta"), []byte(meta), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dl, "complete"), nil, 0o644); err != nil {
		return err
	}
	if err := os.Rename(dl, dir); err != nil {
		if isComplete(dir) {
			return nil // a concurrent run won the race
		}
		return err
	}
	return nil
}

// kernelLayout finds the release, the image and the modules directory in
// an unpacked kernel, relative to root: boot/vmlinuz-R with lib/modules/R
// (Debian 11, 12), or usr/lib/modules/R/vmlinuz* (Debian 14).
func kernelLayout(root string) (rel, vmlinuz, mods string, err error) {
	if m, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*")); len(m) == 1 {
		rel = strings.TrimPrefix(filepath.Base(m[0]), "vmlinuz-")
		vmlinuz = filepath.Join("boot", filepath.Base(m[0]))
	} else if m, _ := filepath.Glob(filepath.Join(root, "usr", "lib", "modules", "*", "vmlinuz*")); len(m) == 1 {
		rel = filepath.Base(filepath.Dir(m[0]))
		vmlinuz, _ = filepath.Rel(root, m[0])
	} else {
		return "", "", "", errors.New("expected one boot/vmlinuz-* or usr/lib/modules/*/vmlinuz*")
	}
	for _, d := range []string{filepath.Join("lib", "modules", rel), filepath.Join("usr", "lib", "modules", rel)} {
		if _, err := os.Stat(filepath.Join(root, d, "kernel")); err == nil {
			return rel, vmlinuz, d, nil
		}
	}
	return "", "", "", fmt.Errorf("release %s: no modules directory", rel)
}

// pruneOld removes cached kernels of the same series and architecture as
// pkg other than keep, so that the cache holds one kernel per series,
// besides the pinned ones.
func pruneOld(o *options, pkg, keep string, logf func(string, ...any)) {
	series := packageSeries(pkg)
	if series == "" {
		return
	}
	for _, d := range cachedFor(o.cache, packageArch(pkg)+"-"+series) {
		if d == keep || o.pins.holds(filepath.Base(d)) {
			continue
		}
		logf("kernel %s: removing superseded %s from the cache", pkg, filepath.Base(d))
		os.RemoveAll(d)
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
		case "vmlinuz":
			k.vmlinuzPath = val
		case "modules":
			k.modPath = val
		}
	}
	if k.Package == "" || k.Release == "" {
		return nil, fmt.Errorf("%s: incomplete meta file", dir)
	}
	// Entries written before the split packaging named neither path.
	if k.vmlinuzPath == "" {
		k.vmlinuzPath = filepath.Join("boot", "vmlinuz-"+k.Release)
	}
	if k.modPath == "" {
		k.modPath = filepath.Join("lib", "modules", k.Release)
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
