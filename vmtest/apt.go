package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// aptSources is the project's own sources list (vmtest/sources.list).
//
//go:embed sources.list
var aptSources []byte

// aptState is the project's own apt state under the cache: its sources
// list, package lists and apt cache. apt is run with these alone, so the
// machine's /etc/apt is neither read for kernels nor changed, and no root
// is needed to refresh the lists.
type aptState struct {
	dir string
}

func newAptState(cache string) (*aptState, error) {
	a := &aptState{dir: filepath.Join(cache, "apt")}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "preferences.d"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if old, _ := os.ReadFile(a.sourcesFile()); !bytes.Equal(old, aptSources) {
		if err := os.WriteFile(a.sourcesFile(), aptSources, 0o644); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(a.dir, "preferences")); err != nil {
		if err := os.WriteFile(filepath.Join(a.dir, "preferences"), nil, 0o644); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *aptState) sourcesFile() string { return filepath.Join(a.dir, "sources.list") }

// stamp holds the sources list the lists were last fetched with.
func (a *aptState) stamp() string { return filepath.Join(a.dir, "lists", "sources.stamp") }

// opts are the options that point apt at this state. Both guest
// architectures are named, so no dpkg --add-architecture is needed.
func (a *aptState) opts() []string {
	o := []string{
		"-o", "Dir::Etc::sourcelist=" + a.sourcesFile(),
		"-o", "Dir::Etc::sourceparts=-",
		"-o", "Dir::State::Lists=" + filepath.Join(a.dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(a.dir, "cache"),
		// The binary cache of the lists, kept so that each apt-cache
		// call does not parse them again (seconds each; Debian's
		// container images switch it off in /etc/apt/apt.conf.d). The
		// source package cache is not needed.
		"-o", "Dir::Cache::pkgcache=pkgcache.bin",
		"-o", "Dir::Cache::srcpkgcache=",
		"-o", "Dir::Etc::preferences=" + filepath.Join(a.dir, "preferences"),
		"-o", "Dir::Etc::preferencesparts=" + filepath.Join(a.dir, "preferences.d"),
		"-o", "APT::Architectures::=amd64",
		"-o", "APT::Architectures::=arm64",
		"-o", "Acquire::Languages=none",
		// The kernels are pinned to exact versions, which apt checks
		// against the signed Release files' hashes. A Release file past
		// its Valid-Until (an archive mirror serving a snapshot; sid and
		// experimental expire within a week) would stop a new machine's
		// first run; its signature is still checked.
		"-o", "Acquire::Check-Valid-Until=false",
	}
	if os.Geteuid() == 0 {
		// apt would switch to _apt for downloads, which cannot write
		// into a cache under root's home; it would say so and go on as
		// root anyway.
		o = append(o, "-o", "APT::Sandbox::User=root")
	}
	return o
}

func (a *aptState) command(tool string, args ...string) *exec.Cmd {
	return exec.Command(tool, append(a.opts(), args...)...)
}

// fresh reports whether the lists were fetched with the current sources.
func (a *aptState) fresh() bool {
	b, err := os.ReadFile(a.stamp())
	if err != nil || !bytes.Equal(b, aptSources) {
		return false
	}
	m, _ := filepath.Glob(filepath.Join(a.dir, "lists", "*_Packages*"))
	return len(m) > 0
}

// update fetches the package lists.
func (a *aptState) update(logf func(string, ...any)) error {
	logf("apt: updating the package lists in %s", filepath.Join(a.dir, "lists"))
	out, err := a.command("apt-get", "update", "-q").CombinedOutput()
	if err != nil {
		return fmt.Errorf("apt-get update (%s): %v\n%s", a.sourcesFile(), err, out)
	}
	// apt-get update exits 0 when some sources failed; say so.
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "W:") || strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "Err:") {
			logf("apt: %s", l)
		}
	}
	return os.WriteFile(a.stamp(), aptSources, 0o644)
}

// ensure fetches the lists when they are missing or were fetched with
// another sources list.
func (a *aptState) ensure(logf func(string, ...any)) error {
	if a.fresh() {
		return nil
	}
	return a.update(logf)
}

// search lists the package names matching the extended regular
// expression re.
func (a *aptState) search(re string) ([]string, error) {
	out, err := a.command("apt-cache", "search", "--names-only", re).Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache search %s: %w", re, err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if name, _, _ := strings.Cut(line, " "); name != "" {
			names = append(names, name)
		}
	}
	return names, nil
}

// candidates returns the version apt would download for each of pkgs, all
// of architecture arch; a package apt does not know is left out.
func (a *aptState) candidates(arch string, pkgs ...string) (map[string]string, error) {
	args := []string{"policy"}
	for _, p := range pkgs {
		args = append(args, p+":"+arch)
	}
	out, err := a.command("apt-cache", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache policy: %w", err)
	}
	vers := map[string]string{}
	cur := ""
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" && line[0] != ' ' && strings.HasSuffix(line, ":") {
			cur, _, _ = strings.Cut(strings.TrimSuffix(line, ":"), ":")
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok && cur != "" {
			if v = strings.TrimSpace(v); v != "" && v != "(none)" {
				vers[cur] = v
			}
		}
	}
	return vers, nil
}

// download fetches pkgs (all of architecture arch, at version ver) into
// dir.
func (a *aptState) download(dir, arch, ver string, pkgs []string) error {
	args := []string{"download", "-q"}
	for _, p := range pkgs {
		args = append(args, p+":"+arch+"="+ver)
	}
	cmd := a.command("apt-get", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s=%s: %v\n%s", strings.Join(pkgs, " "), ver, err, bytes.TrimSpace(out))
	}
	return nil
}

// uris returns the URLs apt would download pkgs from.
func (a *aptState) uris(arch, ver string, pkgs []string) ([]string, error) {
	args := []string{"download", "--print-uris", "-q"}
	for _, p := range pkgs {
		args = append(args, p+":"+arch+"="+ver)
	}
	out, err := a.command("apt-get", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("apt-get download --print-uris: %w", err)
	}
	var us []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "'") {
			us = append(us, strings.Trim(f[0], "'"))
		}
	}
	return us, nil
}
