package main

import (
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

// embeddedPins is vmtest/kernels.pin as the runner was built with it.
//
//go:embed kernels.pin
var embeddedPins []byte

// pin is one line of the pin file: the exact kernel a label means.
type pin struct {
	Label, Package, Version, Suite string
}

type pins []pin

func (ps pins) get(label string) (pin, bool) {
	for _, p := range ps {
		if p.Label == label {
			return p, true
		}
	}
	return pin{}, false
}

// holds reports whether a cache entry's name (PACKAGE_VERSION) is pinned.
func (ps pins) holds(entry string) bool {
	for _, p := range ps {
		if p.Package+"_"+sanitize(p.Version) == entry {
			return true
		}
	}
	return false
}

func (ps pins) labels() []string {
	var ls []string
	for _, p := range ps {
		ls = append(ls, p.Label)
	}
	return ls
}

// newestFor is the label of the newest pinned kernel of arch.
func (ps pins) newestFor(arch string) string {
	var best pin
	for _, p := range ps {
		if packageArch(p.Package) == arch && (best.Label == "" || debVersionCompare(p.Version, best.Version) > 0) {
			best = p
		}
	}
	return best.Label
}

// parsePins reads a pin file: "LABEL PACKAGE VERSION SUITE" per line;
// blank lines and # comments are skipped.
func parsePins(data []byte, name string) (pins, error) {
	var ps pins
	for n, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("%s:%d: want LABEL PACKAGE VERSION SUITE", name, n+1)
		}
		p := pin{f[0], f[1], f[2], f[3]}
		if _, _, ok := labelSeries(p.Label); !ok {
			return nil, fmt.Errorf("%s:%d: label %q is not a series such as 6.1 or arm64-6.1", name, n+1, p.Label)
		}
		if !strings.HasPrefix(p.Package, "linux-image-") {
			return nil, fmt.Errorf("%s:%d: %q is not a linux-image-* package", name, n+1, p.Package)
		}
		if arch, series, _ := labelSeries(p.Label); packageArch(p.Package) != arch || packageSeries(p.Package) != series {
			return nil, fmt.Errorf("%s:%d: %s is not of series %s for %s", name, n+1, p.Package, series, arch)
		}
		if _, dup := ps.get(p.Label); dup {
			return nil, fmt.Errorf("%s:%d: %s pinned twice", name, n+1, p.Label)
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%s: no kernels pinned", name)
	}
	return ps, nil
}

// loadPins reads the pin file at path, or the embedded copy when path is
// empty.
func loadPins(path string) (pins, string, error) {
	if path == "" {
		ps, err := parsePins(embeddedPins, "kernels.pin")
		return ps, "vmtest/kernels.pin", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, path, err
	}
	ps, err := parsePins(b, path)
	return ps, path, err
}

// pinNewest is `vmtest pin`: for each label (default: every pinned one)
// it finds the newest kernel of the series whose packages the archive
// really serves, and prints the pin lines; with write set it rewrites the
// pin file in place, keeping its comments.
func pinNewest(o *options, write bool) error {
	if err := o.apt.update(logf); err != nil {
		return err
	}
	labels := o.kernels
	if len(labels) == 0 {
		labels = o.pins.labels()
	}
	// One version per series across the architectures, so that the
	// amd64 and arm64 guests of a series run the same kernel source.
	bySeries := map[string][]string{}
	var order []string
	for _, label := range labels {
		arch, series, ok := labelSeries(label)
		if !ok || series == "latest" {
			return fmt.Errorf("pin %s: want a series label such as 6.1 or arm64-7.2", label)
		}
		if bySeries[series] == nil {
			order = append(order, series)
		}
		bySeries[series] = append(bySeries[series], arch)
	}
	var fresh pins
	for _, series := range order {
		archs := bySeries[series]
		choices := map[string]map[string]kernelChoice{} // version -> arch -> kernel
		for _, arch := range archs {
			ks, err := aptKernels(o.apt, series, arch)
			if err != nil {
				return err
			}
			for _, k := range ks {
				if choices[k.Version] == nil {
					choices[k.Version] = map[string]kernelChoice{}
				}
				choices[k.Version][arch] = k
			}
		}
		var vers []string
		for v, m := range choices {
			if len(m) == len(archs) {
				vers = append(vers, v)
			}
		}
		sort.Slice(vers, func(i, j int) bool { return debVersionCompare(vers[i], vers[j]) > 0 })
		found := false
		for _, v := range vers {
			var got pins
			for _, arch := range archs {
				k := choices[v][arch]
				if err := reachable(o.apt, arch, k); err != nil {
					logf("pin %s: skipping %s: %v", series, v, err)
					break
				}
				label := series
				if arch != "amd64" {
					label = arch + "-" + series
				}
				got = append(got, pin{label, k.Package, k.Version, suiteOf(o.apt, kernelDebs(k.Package)[0], arch, k.Version)})
			}
			if len(got) == len(archs) {
				fresh = append(fresh, got...)
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("pin %s: no version of the series can be downloaded for %s", series, strings.Join(archs, " and "))
		}
	}
	for _, p := range fresh {
		if old, ok := o.pins.get(p.Label); ok && old.Version != p.Version {
			logf("pin %s: %s %s -> %s %s", p.Label, old.Package, old.Version, p.Package, p.Version)
		}
	}
	if !write {
		for _, p := range fresh {
			fmt.Println(formatPin(p))
		}
		return nil
	}
	if o.pinsPath == "" {
		return errors.New("pin -w: no pin file to write (run it as vmtest/run.sh pin -w, or give --pins FILE)")
	}
	b, err := os.ReadFile(o.pinsPath)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if p, ok := fresh.get(f[0]); ok {
			lines[i] = formatPin(p)
		}
	}
	for _, p := range fresh {
		if _, ok := o.pins.get(p.Label); !ok {
			lines = append(lines, formatPin(p))
		}
	}
	return os.WriteFile(o.pinsPath, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func formatPin(p pin) string {
	return fmt.Sprintf("%-11s %-48s %-19s %s", p.Label, p.Package, p.Version, p.Suite)
}

// reachable checks that the archive serves every package of a kernel:
// the lists can name files a mirror does not have.
func reachable(a *aptState, arch string, k kernelChoice) error {
	urls, err := a.uris(arch, k.Version, kernelDebs(k.Package))
	if err != nil {
		return err
	}
	if len(urls) == 0 {
		return errors.New("apt names no URL")
	}
	c := &http.Client{Timeout: 30 * time.Second}
	for _, u := range urls {
		resp, err := c.Head(u)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", u, resp.Status)
		}
	}
	return nil
}

// suiteOf names the suite apt takes pkg=ver from, from apt-cache policy's
// version table ("500 http://deb.debian.org/debian sid/main amd64 Packages").
func suiteOf(a *aptState, pkg, arch, ver string) string {
	out, err := a.command("apt-cache", "policy", pkg+":"+arch).Output()
	if err != nil {
		return "?"
	}
	in := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "***"))
		switch {
		case len(f) == 2 && f[0] == ver:
			in = true
		case in && len(f) >= 3 && strings.HasPrefix(f[1], "http"):
			suite, _, _ := strings.Cut(f[2], "/")
			return suite
		case in:
			in = false
		}
	}
	return "?"
}
