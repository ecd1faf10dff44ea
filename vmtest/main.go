// Command vmtest boots Debian kernels under qemu and runs commands inside
// them: sendtrace's kernel matrix. See vmtest/README.md.
//
//	vmtest [flags] [-- CMD ARGS...]   run commands in each kernel
//	vmtest fetch [--kernel LIST]      only download and unpack kernels
//	vmtest pin [-w] [--kernel LIST]   the newest version of each pinned series
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// defaultModules are loaded in every guest (with their dependencies) when
// the kernel has them as modules. The scenarios need veth and nftables
// with reject and conntrack; netem is there for delay and loss. nft's
// counter is a module of its own in 5.10 (nft_counter), part of
// nf_tables from 5.13.
var defaultModules = []string{
	"veth",
	"nf_tables", "nf_conntrack", "nft_ct", "nft_counter",
	"nf_reject_ipv4", "nf_reject_ipv6",
	"nft_reject", "nft_reject_ipv4", "nft_reject_ipv6", "nft_reject_inet",
	"ipv6",
	"sch_netem",
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type options struct {
	kernels    []string
	timeout    int
	cmdTimeout int
	cmds       []command
	adds       []string
	binDirs    []string
	modules    []string
	accel      string
	smp        int
	memMiB     int
	jobs       int
	cache      string
	offline    bool
	keep       string
	quiet      bool
	plansDir   string
	// The pin file (vmtest/kernels.pin): pinsPath is "" for the copy
	// built into the runner; pinsName names it in messages.
	pins      pins
	pinsPath  string
	pinsName  string
	unpinned  bool
	aptUpdate bool
	apt       *aptState
}

// command is one shell command for the guest.
type command struct {
	Text    string
	Kernels []string // run only on these labels/packages/architectures; empty: all
	Not     []string // never on these ("!5.10" in a command file)
	NoBTF   bool     // hide /sys/kernel/btf/vmlinux while it runs
	Timeout int      // seconds, 0: the --cmd-timeout default
	// Plan marks the command whose output is the guest's plan: printed
	// again, per guest, at the end of the run, and kept with --plans.
	Plan bool
}

func (c command) appliesTo(k *kernel) bool {
	is := func(l string) bool {
		return l == k.Label || l == k.Package || l == k.Release || l == k.Arch || slices.Contains(k.Also, l)
	}
	if slices.ContainsFunc(c.Not, is) {
		return false
	}
	return len(c.Kernels) == 0 || slices.ContainsFunc(c.Kernels, is)
}

func defaultCache() string {
	if d := os.Getenv("VMTEST_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "sendtrace-vmtest")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "sendtrace-vmtest")
}

func usage(fs *flag.FlagSet) func() {
	return func() {
		fmt.Fprintf(os.Stderr, `usage:
  vmtest [flags] [-- CMD ARGS...]   boot each kernel and run the commands in it
  vmtest fetch [--kernel LIST]      download and unpack the kernels into the cache
  vmtest pin [-w] [--kernel LIST]   print (-w: write into the pin file) the newest
                                    version of each pinned series that the archive serves

Kernels: "all" is every label of the pin file (vmtest/kernels.pin), each
its pinned package; a series (6.1, arm64-7.2) not pinned, or any with
--unpinned, is the newest apt offers; "latest" (arm64-latest) is the newest
of all, experimental's release candidates included, and also runs the
commands of the newest pinned kernel of its architecture. apt runs on the
runner's own state under the cache (sources: vmtest/sources.list).

The command after "--" is run as one shell command (its words are quoted).
More commands come from --cmd (repeatable) and --commands FILE; they run in
order: --commands first, then --cmd, then the one after "--".

Command file lines: "[opts] shell command" (no space after "["; a line
starting with "[ " is taken as the shell's test command). Blank lines and
lines starting with # are ignored. opts is a comma-separated list of: kernel labels (6.1,
6.12, arm64-6.12: run only there), architectures (amd64, arm64), either
after "!" (!5.10: not there), nobtf (hide /sys/kernel/btf/vmlinux; the BTF is at
/btf/vmlinux), timeout=N (seconds), plan (its output is the guest's plan:
shown again per guest at the end, and saved with --plans). In the guest,
VMTEST_KERNEL holds the label, VMTEST_KREL the release and VMTEST_BTF the
BTF copy's path.

flags:
`)
		fs.PrintDefaults()
	}
}

func main() {
	args := os.Args[1:]
	sub := ""
	if len(args) > 0 && (args[0] == "fetch" || args[0] == "pin") {
		sub = args[0]
		args = args[1:]
	}
	var o options
	var kernelList, cmdFiles, cmdFlags, modList listFlag
	var addFlags, binDirs listFlag
	var hideBTF, writePins bool
	fs := flag.NewFlagSet("vmtest", flag.ExitOnError)
	fs.Usage = usage(fs)
	fs.Var(&kernelList, "kernel", "kernels: all (the pinned ones), latest, arm64-latest, or a comma list of series (6.1,arm64-7.2) or linux-image-* package names (repeatable)")
	fs.IntVar(&o.timeout, "timeout", 600, "seconds allowed per kernel for boot plus all commands")
	fs.IntVar(&o.cmdTimeout, "cmd-timeout", 0, "seconds allowed per command inside the guest (0: only --timeout)")
	fs.Var(&cmdFlags, "cmd", "shell command to run in the guest (repeatable)")
	fs.Var(&cmdFiles, "commands", "file with one command per line (repeatable)")
	fs.Var(&addFlags, "add", "HOST_PATH:GUEST_PATH file or directory to copy into the guest (repeatable)")
	fs.Var(&binDirs, "bin-dir", "copy every file of this directory into /vmtest/bin, which is first on PATH (repeatable); ARCH=DIR: only into guests of that architecture (amd64, arm64)")
	fs.Var(&modList, "modules", "extra kernel modules to load, comma-separated (repeatable)")
	fs.BoolVar(&hideBTF, "hide-btf", false, "hide /sys/kernel/btf/vmlinux for the --cmd and \"--\" commands")
	fs.StringVar(&o.accel, "accel", envOr("VMTEST_ACCEL", "tcg"), "tcg, kvm, or auto (try kvm, fall back to tcg if the guest does not boot)")
	fs.IntVar(&o.smp, "smp", 0, "guest CPUs (0: 1 for amd64, 2 for arm64)")
	fs.IntVar(&o.jobs, "jobs", 2, "guests run at the same time")
	fs.IntVar(&o.memMiB, "mem", 1024, "guest memory in MiB")
	fs.StringVar(&o.cache, "cache", defaultCache(), "cache directory for kernels (also $VMTEST_CACHE)")
	fs.BoolVar(&o.offline, "offline", false, "do not ask apt: a pinned label uses its pinned kernel if cached, anything else the newest cached kernel of its series")
	fs.StringVar(&o.keep, "keep", "", "keep each guest's initramfs and console log under this directory")
	fs.BoolVar(&o.quiet, "q", false, "do not stream command output (it is still shown for failed commands)")
	fs.StringVar(&o.plansDir, "plans", "", "write each guest's plan (the output of its plan command) to DIR/LABEL.txt")
	fs.StringVar(&o.pinsPath, "pins", os.Getenv("VMTEST_PINS"), "pin file (default: vmtest/kernels.pin as built into the runner; also $VMTEST_PINS)")
	fs.BoolVar(&o.unpinned, "unpinned", false, "ignore the pins: each series label is the newest kernel apt offers")
	fs.BoolVar(&o.aptUpdate, "apt-update", false, "update the runner's package lists before resolving kernels")
	if sub == "pin" {
		fs.BoolVar(&writePins, "w", false, "write the new versions into the pin file")
	}
	fs.Parse(args)

	var err error
	if o.pins, o.pinsName, err = loadPins(o.pinsPath); err != nil {
		fatal(err)
	}
	if o.apt, err = newAptState(o.cache); err != nil {
		fatal(err)
	}
	if sub == "pin" {
		for _, k := range kernelList {
			for _, s := range strings.Split(k, ",") {
				if s = strings.TrimSpace(s); s != "" && s != "all" {
					o.kernels = append(o.kernels, s)
				}
			}
		}
		if err := pinNewest(&o, writePins); err != nil {
			fatal(err)
		}
		return
	}
	if o.aptUpdate && !o.offline {
		if err := o.apt.update(logf); err != nil {
			fatal(err)
		}
	}

	for _, k := range kernelList {
		for _, s := range strings.Split(k, ",") {
			if s = strings.TrimSpace(s); s == "all" {
				o.kernels = append(o.kernels, o.pins.labels()...)
			} else if s != "" {
				o.kernels = append(o.kernels, s)
			}
		}
	}
	if len(o.kernels) == 0 {
		o.kernels = o.pins.labels()
	}
	for _, m := range modList {
		for _, s := range strings.Split(m, ",") {
			if s = strings.TrimSpace(s); s != "" {
				o.modules = append(o.modules, s)
			}
		}
	}
	o.adds, o.binDirs = addFlags, binDirs
	for _, f := range cmdFiles {
		cs, err := readCommands(f)
		if err != nil {
			fatal(err)
		}
		o.cmds = append(o.cmds, cs...)
	}
	for _, c := range cmdFlags {
		o.cmds = append(o.cmds, command{Text: c, NoBTF: hideBTF})
	}
	if rest := fs.Args(); len(rest) > 0 {
		o.cmds = append(o.cmds, command{Text: shellJoin(rest), NoBTF: hideBTF})
	}
	switch o.accel {
	case "tcg", "kvm", "auto":
	default:
		fatal(fmt.Errorf("--accel %q: want tcg, kvm or auto", o.accel))
	}

	if sub == "fetch" {
		if err := fetch(&o); err != nil {
			fatal(err)
		}
		return
	}
	if len(o.cmds) == 0 {
		fatal(errors.New("no commands: give --cmd, --commands or -- CMD"))
	}
	ok, err := runAll(&o)
	if err != nil {
		fatal(err)
	}
	if !ok {
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "vmtest:", err)
	os.Exit(2)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "vmtest: "+format+"\n", a...)
}

// shellJoin quotes words for sh.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		if w != "" && strings.IndexFunc(w, func(r rune) bool {
			return !(r == '/' || r == '.' || r == '-' || r == '_' || r == '=' || r == ':' || r == ',' ||
				(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
		}) < 0 {
			q[i] = w
		} else {
			q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// readCommands parses a command file (see usage).
func readCommands(file string) ([]command, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var cmds []command
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var c command
		// "[opts] cmd"; a line starting with "[ " is the shell's test.
		if strings.HasPrefix(line, "[") && !strings.HasPrefix(line, "[ ") {
			end := strings.Index(line, "]")
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: unclosed [", file, n+1)
			}
			for _, opt := range strings.Split(line[1:end], ",") {
				opt = strings.TrimSpace(opt)
				switch {
				case opt == "":
				case opt == "nobtf":
					c.NoBTF = true
				case opt == "plan":
					c.Plan = true
				case strings.HasPrefix(opt, "!") && len(opt) > 1:
					c.Not = append(c.Not, opt[1:])
				case strings.HasPrefix(opt, "timeout="):
					if _, err := fmt.Sscanf(opt, "timeout=%d", &c.Timeout); err != nil {
						return nil, fmt.Errorf("%s:%d: bad %q", file, n+1, opt)
					}
				default:
					c.Kernels = append(c.Kernels, opt)
				}
			}
			line = strings.TrimSpace(line[end+1:])
		}
		if line == "" {
			return nil, fmt.Errorf("%s:%d: no command", file, n+1)
		}
		c.Text = line
		cmds = append(cmds, c)
	}
	return cmds, nil
}

func fetch(o *options) error {
	for _, label := range o.kernels {
		k, err := resolveKernel(o, label, logf)
		if err != nil {
			return err
		}
		mi, err := newModuleIndex(k)
		if err != nil {
			return err
		}
		order, missing, err := mi.resolve(append(append([]string{}, defaultModules...), o.modules...))
		if err != nil {
			return err
		}
		if _, err := prepareUserland(o.cache, k.Arch, o.offline, logf); err != nil {
			return err
		}
		state := "cached"
		if k.Fetched {
			state = "downloaded"
		}
		fmt.Printf("%-10s %s %s release=%s modules=%d %s in %.1fs\n", k.Label, k.Package, k.Version, k.Release, len(order), state, k.PrepSec)
		if len(missing) > 0 {
			fmt.Printf("%-10s not available as modules (built in or absent): %s\n", k.Label, strings.Join(missing, " "))
		}
	}
	return nil
}
