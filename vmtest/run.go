package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

//go:embed init.sh
var initScript []byte

const marker = "@@VMTEST@@ "

// result of one command in one guest.
type result struct {
	cmd    command
	status string // PASS, FAIL, TIMEOUT, NOT RUN
	rc     int
	secs   float64
	output []string
}

// guestRun is what happened in one kernel.
type guestRun struct {
	k        *kernel
	accel    string
	bootSecs float64 // host seconds from qemu start to READY
	total    float64 // host seconds for the whole guest
	results  []*result
	problems []string // boot-level failures: timeout, crash, module errors
	console  string   // path of the kernel console log
}

func (g *guestRun) ok() bool {
	if len(g.problems) > 0 {
		return false
	}
	for _, r := range g.results {
		if r.status != "PASS" {
			return false
		}
	}
	return true
}

// runAll prepares every kernel and user space first (apt runs one at a
// time), then boots up to o.jobs guests at once, the longest first (by
// the time each took last, kept in the cache, or else by how many
// commands it runs), so that the short ones fill in behind.
func runAll(o *options) (bool, error) {
	var kernels []*kernel
	lands := map[string]*userland{}
	for _, label := range o.kernels {
		k, err := resolveKernel(o, label, logf)
		if err != nil {
			return false, err
		}
		if _, series, ok := labelSeries(label); ok && series == "latest" {
			// The newest kernel runs the matrix of the newest pinned one.
			if l := o.pins.newestFor(k.Arch); l != "" {
				k.Also = []string{l}
			}
		}
		if _, ok := machines[k.Arch]; !ok {
			return false, fmt.Errorf("kernel %s: no qemu machine for %s", label, k.Arch)
		}
		if lands[k.Arch] == nil {
			if lands[k.Arch], err = prepareUserland(o.cache, k.Arch, o.offline, logf); err != nil {
				return false, fmt.Errorf("kernel %s: %w", label, err)
			}
		}
		kernels = append(kernels, k)
	}
	order := make([]int, len(kernels))
	for i := range order {
		order[i] = i
	}
	last := readTimings(o.cache)
	cost := func(k *kernel) float64 {
		if t, ok := last[k.Label]; ok {
			return t
		}
		n := 0
		for _, c := range o.cmds {
			if c.appliesTo(k) {
				n++
			}
		}
		return float64(n) * 30
	}
	sort.SliceStable(order, func(a, b int) bool { return cost(kernels[order[a]]) > cost(kernels[order[b]]) })
	runs := make([]*guestRun, len(kernels))
	errs := make([]error, len(kernels))
	sem := make(chan struct{}, max(o.jobs, 1))
	var wg sync.WaitGroup
	for _, i := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			runs[i], errs[i] = runKernel(o, kernels[i], lands[kernels[i].Arch])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	for _, g := range runs {
		last[g.k.Label] = g.total
	}
	writeTimings(o.cache, last)
	if err := printPlans(os.Stdout, runs, o.plansDir); err != nil {
		return false, err
	}
	printTable(os.Stdout, runs)
	ok := true
	for _, g := range runs {
		ok = ok && g.ok()
	}
	return ok, nil
}

// buildInitramfs writes the guest's initramfs for kernel k and the
// commands cmds into file.
func buildInitramfs(o *options, k *kernel, cmds []command, u *userland, file string) error {
	r := newInitramfs()
	r.addData("init", initScript, 0o755)
	if err := u.add(r); err != nil {
		return err
	}
	for _, f := range []string{"/etc/protocols", "/etc/services", "/etc/ethertypes", "/etc/iproute2"} {
		if _, err := os.Stat(f); err == nil {
			if err := r.addFile(f, f); err != nil {
				return err
			}
		}
	}
	r.addData("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644)
	r.addData("etc/group", []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	r.addData("etc/hosts", []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644)
	r.addData("etc/nsswitch.conf", []byte("passwd: files\ngroup: files\nhosts: files\n"), 0o644)

	// Kernel modules, dependencies first. The results channel's own
	// modules are loaded before anything else, and listed apart.
	mi, err := newModuleIndex(k)
	if err != nil {
		return err
	}
	m := machines[k.Arch]
	early, _, err := mi.resolve(m.channelModules)
	if err != nil {
		return err
	}
	order, missing, err := mi.resolve(append(append(append([]string{}, m.channelModules...), defaultModules...), o.modules...))
	if err != nil {
		return err
	}
	for _, m := range missing {
		for _, want := range o.modules {
			if strings.ReplaceAll(want, "-", "_") == m {
				return fmt.Errorf("kernel %s has no module %s", k.Label, m)
			}
		}
	}
	var list, earlyList []string
	for i, p := range order {
		name := fmt.Sprintf("%02d-%s", i, filepath.Base(p))
		if err := r.addFile(p, "vmtest/modules/"+name); err != nil {
			return err
		}
		if slices.Contains(early, p) {
			earlyList = append(earlyList, name)
		} else {
			list = append(list, name)
		}
	}
	r.addData("vmtest/modules.list", []byte(strings.Join(list, "\n")+"\n"), 0o644)
	r.addData("vmtest/early-modules.list", []byte(strings.Join(earlyList, "\n")+"\n"), 0o644)

	// Files the caller passes in.
	for _, a := range o.adds {
		host, guest, ok := strings.Cut(a, ":")
		if !ok || host == "" || guest == "" {
			return fmt.Errorf("--add %q: want HOST_PATH:GUEST_PATH", a)
		}
		if err := r.addFile(host, guest); err != nil {
			return fmt.Errorf("--add %s: %w", a, err)
		}
	}
	for _, d := range o.binDirs {
		if arch, dir, ok := strings.Cut(d, "="); ok {
			if arch != k.Arch {
				continue
			}
			d = dir
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			if err := r.addFile(filepath.Join(d, e.Name()), path.Join("vmtest/bin", e.Name())); err != nil {
				return err
			}
		}
	}
	r.mkdirAll("vmtest/bin")

	for i, c := range cmds {
		n := fmt.Sprintf("vmtest/cmd/%03d", i+1)
		r.addData(n+".sh", []byte(c.Text+"\n"), 0o755)
		var opts []string
		t := c.Timeout
		if t == 0 {
			t = o.cmdTimeout
		}
		if t > 0 {
			opts = append(opts, "timeout="+strconv.Itoa(t))
		}
		if c.NoBTF {
			opts = append(opts, "nobtf")
		}
		r.addData(n+".opt", []byte(strings.Join(opts, " ")+"\n"), 0o644)
	}
	cfg := fmt.Sprintf("KERNEL=%s\nARCH=%s\nCHANNEL=%s\nNCMDS=%d\n", shellJoin([]string{k.Label}), k.Arch, m.channel, len(cmds))
	r.addData("vmtest/config", []byte(cfg), 0o644)

	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := r.write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runKernel(o *options, k *kernel, u *userland) (*guestRun, error) {
	var cmds []command
	for _, c := range o.cmds {
		if c.appliesTo(k) {
			cmds = append(cmds, c)
		}
	}
	var work string
	var err error
	if o.keep != "" {
		work = filepath.Join(o.keep, k.Label)
		os.RemoveAll(work)
		err = os.MkdirAll(work, 0o755)
	} else {
		work, err = os.MkdirTemp("", "vmtest-")
		defer os.RemoveAll(work)
	}
	if err != nil {
		return nil, err
	}
	initrd := filepath.Join(work, "initramfs.cpio")
	t0 := time.Now()
	if err := buildInitramfs(o, k, cmds, u, initrd); err != nil {
		return nil, fmt.Errorf("kernel %s: initramfs: %w", k.Label, err)
	}
	st, _ := os.Stat(initrd)
	also := ""
	if len(k.Also) > 0 {
		also = ", also those of " + strings.Join(k.Also, ",")
	}
	logf("kernel %s (%s %s): initramfs %.1f MiB built in %.1fs, %d commands%s",
		k.Label, k.Package, k.Version, float64(st.Size())/(1<<20), time.Since(t0).Seconds(), len(cmds), also)

	accel := o.accel
	if k.Arch != hostArch() {
		accel = "tcg" // KVM runs the host's architecture only
	} else if accel == "auto" {
		if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
			f.Close()
			accel = "kvm"
		} else {
			accel = "tcg"
		}
	}
	g := boot(o, k, cmds, initrd, work, accel)
	if o.accel == "auto" && accel == "kvm" && g.bootSecs == 0 && k.Arch == hostArch() {
		logf("kernel %s: no boot with KVM (%s); retrying with TCG", k.Label, strings.Join(g.problems, "; "))
		g = boot(o, k, cmds, initrd, work, "tcg")
	}
	if !g.ok() {
		reportFailure(g)
	}
	return g, nil
}

// boot runs one guest and collects the results from its channel.
func boot(o *options, k *kernel, cmds []command, initrd, work, accel string) *guestRun {
	g := &guestRun{k: k, accel: accel, console: filepath.Join(work, "console.log")}
	for _, c := range cmds {
		g.results = append(g.results, &result{cmd: c, status: "NOT RUN", rc: -1})
	}
	limit := time.Duration(o.timeout) * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var probe *time.Timer
	if accel == "kvm" && o.accel == "auto" {
		// A KVM guest boots in a second or two; one that has not
		// started init after 20s has failed (a KVM internal error
		// leaves qemu paused rather than exiting).
		probe = time.AfterFunc(20*time.Second, func() {
			g.problems = append(g.problems, "no boot within 20s")
			cancel()
		})
	}
	m := machines[k.Arch]
	smp := o.smp
	if smp == 0 {
		smp = m.smp
	}
	scale := 1
	if accel != "kvm" {
		scale = m.tcgTimeScale
	}
	// The kernel passes a NAME=value it does not know to init's
	// environment: the time scale depends on the accelerator, which is
	// chosen after the initramfs is built.
	cmdline := fmt.Sprintf("console=%s rdinit=/init panic=-1 oops=panic loglevel=4 mitigations=off VMTEST_TIME_SCALE=%d", m.console, scale)
	args := []string{
		"-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
		"-nic", "none",
		"-smp", strconv.Itoa(smp), "-m", strconv.Itoa(o.memMiB),
		"-kernel", k.vmlinuz(), "-initrd", initrd,
		"-append", cmdline,
		"-serial", "file:" + g.console,
	}
	args = append(args, m.channelArgs...)
	if accel == "kvm" {
		args = append(args, m.kvm...)
	} else {
		args = append(args, m.tcg...)
	}
	cmd := exec.CommandContext(ctx, m.qemu, args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		g.problems = append(g.problems, err.Error())
		return g
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		g.problems = append(g.problems, "qemu: "+err.Error())
		return g
	}
	prefix := fmt.Sprintf("[%s] ", k.Label)
	done := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	var cur *result
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		// A record normally starts the line; anything before the
		// marker is the tail of an output line without a newline.
		i := strings.Index(line, marker)
		if i < 0 {
			continue
		}
		if i > 0 && cur != nil {
			cur.output[len(cur.output)-1] += line[:i]
		}
		rec := line[i+len(marker):]
		kind, rest, _ := strings.Cut(rec, " ")
		switch kind {
		case "BOOT":
			if probe != nil {
				probe.Stop()
			}
			logf("kernel %s: booted in %.1fs (%s, %s)", k.Label, time.Since(start).Seconds(), accel, rest)
		case "MODFAIL":
			g.problems = append(g.problems, "insmod "+rest)
			logf("kernel %s: insmod failed: %s", k.Label, rest)
		case "READY":
			g.bootSecs = time.Since(start).Seconds()
		case "BEGIN":
			n, _ := strconv.Atoi(rest)
			if n >= 1 && n <= len(g.results) {
				cur = g.results[n-1]
				cur.status = "TIMEOUT" // until END arrives
				if !o.quiet {
					fmt.Printf("%s$ %s\n", prefix, cur.cmd.Text)
				}
			}
		case "OUT":
			_, text, _ := strings.Cut(rest, " ")
			if cur != nil {
				cur.output = append(cur.output, text)
				if !o.quiet {
					fmt.Printf("%s%s\n", prefix, text)
				}
			}
		case "END":
			f := strings.Fields(rest)
			n, _ := strconv.Atoi(f[0])
			if n < 1 || n > len(g.results) {
				continue
			}
			r := g.results[n-1]
			var t0, t1 float64
			timedOut := false
			for _, kv := range f[1:] {
				key, val, _ := strings.Cut(kv, "=")
				switch key {
				case "rc":
					r.rc, _ = strconv.Atoi(val)
				case "start":
					t0, _ = strconv.ParseFloat(val, 64)
				case "end":
					t1, _ = strconv.ParseFloat(val, 64)
				case "timeout":
					timedOut = val == "1"
				}
			}
			r.secs = t1 - t0
			switch {
			case timedOut:
				r.status = "TIMEOUT"
			case r.rc == 0:
				r.status = "PASS"
			default:
				r.status = "FAIL"
			}
			if !o.quiet {
				fmt.Printf("%s%s rc=%d %.2fs\n", prefix, r.status, r.rc, r.secs)
			}
			cur = nil
		case "DONE":
			done = true
		}
		if done {
			break
		}
	}
	if done {
		// The guest powers itself off; give it a moment, then stop it.
		go func() {
			time.Sleep(10 * time.Second)
			cancel()
		}()
	}
	werr := cmd.Wait()
	g.total = time.Since(start).Seconds()
	switch {
	case done:
	case probe != nil && g.bootSecs == 0:
	case ctx.Err() != nil:
		g.problems = append(g.problems, fmt.Sprintf("guest did not finish within %ds", int(limit.Seconds())))
	default:
		msg := "guest stopped before finishing"
		if werr != nil {
			msg += ": " + werr.Error()
		}
		if s := strings.TrimSpace(stderr.String()); s != "" {
			msg += ": " + s
		}
		g.problems = append(g.problems, msg)
	}
	return g
}

func reportFailure(g *guestRun) {
	for _, p := range g.problems {
		logf("kernel %s: %s", g.k.Label, p)
	}
	for _, r := range g.results {
		if r.status == "PASS" || r.status == "NOT RUN" {
			continue
		}
		fmt.Fprintf(os.Stderr, "---- [%s] %s: %s (rc=%d)\n", g.k.Label, r.status, r.cmd.Text, r.rc)
		if lines := failedTestLines(r.output, 120); len(lines) > 0 {
			fmt.Fprintf(os.Stderr, "---- [%s] the failed tests' output:\n", g.k.Label)
			for _, l := range lines {
				fmt.Fprintf(os.Stderr, "  %s\n", l)
			}
			fmt.Fprintf(os.Stderr, "---- [%s] the command's last lines:\n", g.k.Label)
		}
		tail := r.output
		if len(tail) > 200 {
			tail = tail[len(tail)-200:]
		}
		for _, l := range tail {
			fmt.Fprintf(os.Stderr, "  %s\n", l)
		}
	}
	if len(g.problems) > 0 {
		if b, err := os.ReadFile(g.console); err == nil {
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			fmt.Fprintf(os.Stderr, "---- [%s] last lines of the kernel console:\n", g.k.Label)
			for _, l := range lines {
				fmt.Fprintf(os.Stderr, "  %s\n", strings.TrimRight(l, "\r"))
			}
		}
	}
}

// printPlans shows, per guest, the output of its plan commands (the
// hook each layer got, or why it is degraded), which the streamed output
// interleaves when guests run at once; with dir set it also writes each to
// dir/LABEL.txt.
func printPlans(w *os.File, runs []*guestRun, dir string) error {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	for _, g := range runs {
		var plan []string
		for _, r := range g.results {
			if r.cmd.Plan && r.status != "NOT RUN" {
				plan = append(plan, r.output...)
			}
		}
		if plan == nil {
			continue
		}
		fmt.Fprintf(w, "==== plan: %s (%s, %s %s)\n", g.k.Label, g.k.Release, g.k.Package, g.k.Version)
		for _, l := range plan {
			fmt.Fprintln(w, l)
		}
		if dir != "" {
			f := filepath.Join(dir, g.k.Label+".txt")
			if err := os.WriteFile(f, []byte(strings.Join(plan, "\n")+"\n"), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func printTable(w *os.File, runs []*guestRun) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KERNEL\tRELEASE\tCOMMAND\tRESULT\tSECONDS")
	for _, g := range runs {
		boot := "PASS"
		if g.bootSecs == 0 || len(g.problems) > 0 {
			boot = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t(boot, %s)\t%s\t%.1f\n", g.k.Label, g.k.Release, g.accel, boot, g.bootSecs)
		for _, r := range g.results {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\n", g.k.Label, g.k.Release, short(r.cmd.Text, 60), r.status, r.secs)
		}
		fmt.Fprintf(tw, "%s\t%s\t(total)\t%s\t%.1f\n", g.k.Label, g.k.Release, passFail(g.ok()), g.total)
	}
	tw.Flush()
	var pass, fail int
	for _, g := range runs {
		for _, r := range g.results {
			if r.status == "PASS" {
				pass++
			} else {
				fail++
			}
		}
	}
	for _, g := range runs {
		for _, r := range g.results {
			if r.status != "PASS" && r.status != "NOT RUN" {
				fmt.Fprintf(w, "vmtest: %s %s: %s", g.k.Label, r.status, short(r.cmd.Text, 60))
				if names := failedTests(r.output); len(names) > 0 {
					fmt.Fprintf(w, ": %s", strings.Join(names, ", "))
				}
				fmt.Fprintln(w)
			}
		}
	}
	fmt.Fprintf(w, "vmtest: %d passed, %d failed\n", pass, fail)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func short(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// readTimings returns how long each kernel's guest took in the last run,
// by label; writeTimings keeps them for the next.
func readTimings(cache string) map[string]float64 {
	t := map[string]float64{}
	b, err := os.ReadFile(filepath.Join(cache, "timings"))
	if err != nil {
		return t
	}
	for _, line := range strings.Split(string(b), "\n") {
		label, secs, ok := strings.Cut(line, " ")
		if v, err := strconv.ParseFloat(secs, 64); ok && err == nil {
			t[label] = v
		}
	}
	return t
}

func writeTimings(cache string, t map[string]float64) {
	var b strings.Builder
	for label, secs := range t {
		fmt.Fprintf(&b, "%s %.1f\n", label, secs)
	}
	os.WriteFile(filepath.Join(cache, "timings"), []byte(b.String()), 0o644)
}
