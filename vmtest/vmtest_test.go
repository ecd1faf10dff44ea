package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
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
		{"linux-image-6.1.0-56-cloud-amd64", false, false, false},
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
}

func TestLabels(t *testing.T) {
	for _, tc := range []struct{ label, arch, series string }{
		{"6.1", "amd64", "6.1"}, {"6.12", "amd64", "6.12"}, {"arm64-6.12", "arm64", "6.12"}, {"amd64-6.1", "amd64", "6.1"},
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
