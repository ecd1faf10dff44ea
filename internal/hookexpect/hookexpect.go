// Package hookexpect reads the file that says, for each kernel of the
// matrix, which hook each layer must get, and holds a plan to it. A layer
// that degrades where the file does not allow it fails: a kernel update
// whose verifier refuses a program must stop a test run, not print a
// warning nobody reads.
//
// The file has one line per kernel:
//
//	[6.12] send-return=tp_btf/sock_send_length owner-seed=iter/task_file
//	[arm64-6.1] send-return=kretprobe drop=degraded
//
// The label is the release's first two numbers, after "arm64-" on arm64.
// LAYER=HOOK asks for a hook starting with HOOK; LAYER=degraded allows the
// layer to degrade; a layer a line leaves out must not degrade. A kernel
// with no line is held to the same rule with no hooks named. Blank lines
// and lines starting with # are skipped.
package hookexpect

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/sendtrace/sendtrace/internal/session"
)

// Kernel is one line of the file.
type Kernel struct {
	Label string
	// Hooks maps a layer to the hook (prefix) it must get, or to
	// "degraded" where it may degrade.
	Hooks map[string]string
}

// File is the whole file, by label.
type File struct {
	Name    string
	Kernels map[string]Kernel
}

var lineRE = regexp.MustCompile(`^\[([a-z0-9.-]+)\]\s*(.*)$`)

// Parse reads a file; name is used in messages.
func Parse(r io.Reader, name string) (*File, error) {
	f := &File{Name: name, Kernels: map[string]Kernel{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("%s:%d: want [KERNEL] LAYER=HOOK ..., got %q", name, n, line)
		}
		k := Kernel{Label: m[1], Hooks: map[string]string{}}
		if _, dup := f.Kernels[k.Label]; dup {
			return nil, fmt.Errorf("%s:%d: kernel %s is listed twice", name, n, k.Label)
		}
		for _, w := range strings.Fields(m[2]) {
			layer, hook, ok := strings.Cut(w, "=")
			if !ok || layer == "" || hook == "" {
				return nil, fmt.Errorf("%s:%d: want LAYER=HOOK, got %q", name, n, w)
			}
			k.Hooks[layer] = hook
		}
		f.Kernels[k.Label] = k
	}
	return f, sc.Err()
}

// Label names a kernel as the file does: "6.18" for 6.18.44-cloud-amd64 on
// amd64, "arm64-6.1" on arm64.
func Label(release, goarch string) string {
	series := release
	if parts := strings.SplitN(release, ".", 3); len(parts) >= 2 {
		minor := parts[1]
		if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			minor = minor[:i]
		}
		series = parts[0] + "." + minor
	}
	if goarch != "amd64" {
		return goarch + "-" + series
	}
	return series
}

// Check holds a plan to the line for label. It returns one message per
// layer that differs, each naming the kernel and, for a degraded layer,
// the kernel's answer to every candidate tried.
func (f *File) Check(plan session.Plan, release, label string) []string {
	k, listed := f.Kernels[label]
	var bad []string
	for _, h := range plan {
		want, named := k.Hooks[h.Layer]
		got := h.Shown()
		switch {
		case named && want == string(session.StatusDegraded):
			continue
		case named && !strings.HasPrefix(got, want):
			bad = append(bad, fmt.Sprintf("kernel %s (%s): layer %s uses %q, %s expects %q%s", release, label, h.Layer, got, f.Name, want, tried(h)))
		case !named && h.Status() == session.StatusDegraded:
			why := "which does not allow it to degrade"
			if !listed {
				why = "which does not list this kernel, so no layer may degrade"
			}
			bad = append(bad, fmt.Sprintf("kernel %s (%s): layer %s is degraded, not allowed by %s, %s%s", release, label, h.Layer, f.Name, why, tried(h)))
		}
	}
	for layer := range k.Hooks {
		if _, ok := plan.Layer(layer); !ok {
			bad = append(bad, fmt.Sprintf("%s: kernel %s names layer %q, which the plan does not have", f.Name, label, layer))
		}
	}
	return bad
}

// tried gives the kernel's answers, which say why a layer degraded.
func tried(h session.Hook) string {
	if len(h.Tried) == 0 {
		return ""
	}
	return "; the kernel's answers: " + strings.Join(h.Tried, "; ")
}
