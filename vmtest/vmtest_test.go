package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func TestNaturalLess(t *testing.T) {
	names := []string{
		"linux-image-6.1.0-56-cloud-amd64-unsigned",
		"linux-image-6.1.0-9-cloud-amd64-unsigned",
		"linux-image-6.1.0-47-cloud-amd64-unsigned",
	}
	sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
	want := []string{
		"linux-image-6.1.0-9-cloud-amd64-unsigned",
		"linux-image-6.1.0-47-cloud-amd64-unsigned",
		"linux-image-6.1.0-56-cloud-amd64-unsigned",
	}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("got %v", names)
	}
}

func TestPackagePattern(t *testing.T) {
	p61, p612 := packagePattern("6.1", "amd64"), packagePattern("6.12", "amd64")
	a61 := packagePattern("6.1", "arm64")
	for _, tc := range []struct {
		name           string
		m61, m612, a61 bool
	}{
		{"linux-image-6.1.0-56-cloud-amd64-unsigned", true, false, false},
		{"linux-image-6.12.117+deb12-cloud-amd64-unsigned", false, true, false},
		{"linux-image-6.1.0-56-cloud-amd64", true, false, false},
		{"linux-image-6.1.0-56-cloud-amd64-dbg", false, false, false},
		{"linux-image-6.1.0-56-amd64-unsigned", false, false, false},
		{"linux-image-6.1.0-56-cloud-arm64-unsigned", false, false, true},
		{"linux-image-6.12.117+deb12-cloud-arm64-unsigned", false, false, false},
	} {
		if got := p61.MatchString(tc.name); got != tc.m61 {
			t.Errorf("6.1 %s: %v", tc.name, got)
		}
		if got := p612.MatchString(tc.name); got != tc.m612 {
			t.Errorf("6.12 %s: %v", tc.name, got)
		}
		if got := a61.MatchString(tc.name); got != tc.a61 {
			t.Errorf("arm64-6.1 %s: %v", tc.name, got)
		}
	}
	// Debian 14's names: no -unsigned image, and a release candidate's
	// release is the bare series.
	p72, p73, latest := packagePattern("7.2", "amd64"), packagePattern("7.3", "arm64"), packagePattern("latest", "arm64")
	for _, tc := range []struct {
		name             string
		m72, m73, latest bool
	}{
		{"linux-image-7.2.13+deb14-cloud-amd64", true, false, false},
		{"linux-image-7.3-cloud-arm64", false, true, true},
		{"linux-image-7.3.1+deb14-cloud-arm64", false, true, true},
		{"linux-image-5.10.0-32-cloud-arm64-unsigned", false, false, true},
		{"linux-image-cloud-arm64", false, false, false},
		{"linux-image-7.3-cloud-arm64-dbg", false, false, false},
	} {
		if got := p72.MatchString(tc.name); got != tc.m72 {
			t.Errorf("7.2 %s: %v", tc.name, got)
		}
		if got := p73.MatchString(tc.name); got != tc.m73 {
			t.Errorf("arm64-7.3 %s: %v", tc.name, got)
		}
		if got := latest.MatchString(tc.name); got != tc.latest {
			t.Errorf("arm64-latest %s: %v", tc.name, got)
		}
	}
}

func TestKernelDebs(t *testing.T) {
	for pkg, want := range map[string][]string{
		"linux-image-5.10.0-32-cloud-amd64-unsigned": {"linux-image-5.10.0-32-cloud-amd64-unsigned"},
		"linux-image-7.2.13+deb14-cloud-arm64": {"linux-binary-unsigned-7.2.13+deb14-cloud-arm64",
			"linux-modules-7.2.13+deb14-cloud-arm64", "linux-base-7.2.13+deb14-cloud-arm64"},
	} {
		if got := kernelDebs(pkg); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v", pkg, got)
		}
	}
	if s := packageSeries("linux-image-7.3-cloud-amd64"); s != "7.3" {
		t.Errorf("series %q", s)
	}
	if s := packageSeries("linux-image-6.12.118+deb12-cloud-amd64-unsigned"); s != "6.12" {
		t.Errorf("series %q", s)
	}
}

func TestDebVersionCompare(t *testing.T) {
	ordered := []string{"7.2.13-1", "7.3~rc6-1~exp1", "7.3~rc7-1~exp1", "7.3-1", "7.3.1-1", "7.10-1", "1:1.0-1"}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := debVersionCompare(ordered[i], ordered[j]); got != want {
				t.Errorf("compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	for _, eq := range [][2]string{{"6.12.118-1~deb12u1", "6.12.118-1~deb12u1"}, {"1.01-1", "1.1-1"}} {
		if debVersionCompare(eq[0], eq[1]) != 0 {
			t.Errorf("%s != %s", eq[0], eq[1])
		}
	}
	if debVersionCompare("6.12.118-1~deb12u1", "6.12.118-1") >= 0 {
		t.Error("a ~ revision sorts first")
	}
}

func TestPins(t *testing.T) {
	ps, err := parsePins(embeddedPins, "kernels.pin")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"5.10", "6.1", "6.12", "7.2", "arm64-5.10", "arm64-6.1", "arm64-6.12", "arm64-7.2"}; !reflect.DeepEqual(ps.labels(), want) {
		t.Errorf("labels %v", ps.labels())
	}
	if l := ps.newestFor("arm64"); l != "arm64-7.2" {
		t.Errorf("newest arm64 %s", l)
	}
	p, _ := ps.get("6.12")
	if !ps.holds(p.Package + "_" + p.Version) {
		t.Error("holds")
	}
	for _, bad := range []string{
		"6.1 linux-image-6.1.0-57-cloud-amd64-unsigned 6.1.192-3",
		"6.1 linux-image-6.12.118+deb12-cloud-amd64-unsigned 1 x",
		"arm64-6.1 linux-image-6.1.0-57-cloud-amd64-unsigned 1 x",
		"6.1 a 1 x\n6.1 linux-image-6.1.0-57-cloud-amd64-unsigned 1 x",
	} {
		if _, err := parsePins([]byte(bad), "bad"); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestKernelLayout(t *testing.T) {
	for _, tc := range []struct{ files []string }{
		{[]string{"boot/vmlinuz-5.10.0-32-cloud-amd64", "lib/modules/5.10.0-32-cloud-amd64/kernel/x.ko"}},
		{[]string{"usr/lib/modules/7.2.13+deb14-cloud-amd64/vmlinuz.unsigned", "usr/lib/modules/7.2.13+deb14-cloud-amd64/kernel/x.ko.xz"}},
	} {
		root := t.TempDir()
		for _, f := range tc.files {
			os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
			os.WriteFile(filepath.Join(root, f), nil, 0o644)
		}
		rel, vmlinuz, mods, err := kernelLayout(root)
		if err != nil {
			t.Fatal(err)
		}
		if vmlinuz != tc.files[0] || filepath.Join(mods, "kernel", filepath.Base(tc.files[1])) != tc.files[1] || !strings.Contains(vmlinuz, rel) {
			t.Errorf("%v: %s %s %s", tc.files, rel, vmlinuz, mods)
		}
	}
}

func TestLabels(t *testing.T) {
	for _, tc := range []struct{ label, arch, series string }{
		{"6.1", "amd64", "6.1"}, {"6.12", "amd64", "6.12"}, {"arm64-6.12", "arm64", "6.12"}, {"amd64-6.1", "amd64", "6.1"},
		{"latest", "amd64", "latest"}, {"arm64-latest", "arm64", "latest"}, {"arm64-7.2", "arm64", "7.2"},
	} {
		if a, s, ok := labelSeries(tc.label); !ok || a != tc.arch || s != tc.series {
			t.Errorf("%s: %s %s %v", tc.label, a, s, ok)
		}
	}
	if _, _, ok := labelSeries("linux-image-6.1.0-56-cloud-arm64-unsigned"); ok {
		t.Error("a package name is not a series")
	}
	if a := packageArch("linux-image-6.1.0-56-cloud-arm64-unsigned"); a != "arm64" {
		t.Errorf("package arch %s", a)
	}
	if a := packageArch("linux-image-6.12.117+deb12-cloud-amd64-unsigned"); a != "amd64" {
		t.Errorf("package arch %s", a)
	}
}

func TestReadCommands(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cmds")
	os.WriteFile(f, []byte(`# comment

sendtrace check
[6.1,nobtf,timeout=30] sendtrace check --btf /btf/vmlinux
[ -e /btf/vmlinux ] && echo yes
`), 0o644)
	cmds, err := readCommands(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []command{
		{Text: "sendtrace check"},
		{Text: "sendtrace check --btf /btf/vmlinux", Kernels: []string{"6.1"}, NoBTF: true, Timeout: 30},
		{Text: "[ -e /btf/vmlinux ] && echo yes"},
	}
	if !reflect.DeepEqual(cmds, want) {
		t.Fatalf("got %#v", cmds)
	}
	k := &kernel{Label: "6.12"}
	if cmds[1].appliesTo(k) || !cmds[0].appliesTo(k) {
		t.Fatal("kernel filter")
	}
}

func TestCommandKernels(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cmds")
	os.WriteFile(f, []byte(`[!5.10,!arm64-5.10,timeout=9] a
[7.2,plan] b
[arm64,!arm64-5.10] c
`), 0o644)
	cmds, err := readCommands(f)
	if err != nil {
		t.Fatal(err)
	}
	if !cmds[1].Plan || cmds[0].Plan || cmds[0].Timeout != 9 {
		t.Fatalf("%#v", cmds)
	}
	latest := &kernel{Label: "latest", Arch: "amd64", Also: []string{"7.2"}}
	for _, tc := range []struct {
		k    *kernel
		want [3]bool
	}{
		{&kernel{Label: "5.10", Arch: "amd64"}, [3]bool{false, false, false}},
		{&kernel{Label: "7.2", Arch: "amd64"}, [3]bool{true, true, false}},
		{&kernel{Label: "arm64-5.10", Arch: "arm64"}, [3]bool{false, false, false}},
		{&kernel{Label: "arm64-6.1", Arch: "arm64"}, [3]bool{true, false, true}},
		{latest, [3]bool{true, true, false}},
	} {
		for i, c := range cmds {
			if got := c.appliesTo(tc.k); got != tc.want[i] {
				t.Errorf("%s, command %q: %v", tc.k.Label, c.Text, got)
			}
		}
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"sh", "-c", "echo 'a b'", "x=1"})
	if want := `sh -c 'echo '\''a b'\''' x=1`; got != want {
		t.Fatalf("got %s", got)
	}
}

// TestCpio reads the archive back: newc headers, names, sizes, padding.
func TestCpio(t *testing.T) {
	r := newInitramfs()
	r.addData("a/b/file", []byte("hello"), 0o644)
	r.addSymlink("bin/sh", "/usr/bin/dash")
	var buf bytes.Buffer
	if err := r.write(&buf); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	got := map[string]string{}
	for len(b) > 0 {
		if string(b[:6]) != "070701" {
			t.Fatalf("bad magic %q", b[:6])
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		size, namesize := field(6), field(11)
		name := string(b[110 : 110+namesize-1])
		off := (110 + namesize + 3) &^ 3
		got[name] = string(b[off : off+size])
		b = b[(off+size+3)&^3:]
		if name == "TRAILER!!!" {
			break
		}
	}
	for name, want := range map[string]string{".": "", "a": "", "a/b": "", "a/b/file": "hello", "bin/sh": "/usr/bin/dash"} {
		if g, ok := got[name]; !ok || g != want {
			t.Errorf("%s: got %q (present %v), want %q", name, g, ok, want)
		}
	}
}
