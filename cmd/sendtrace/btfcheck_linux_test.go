package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckKernelBTF: an empty, cut-short or foreign kernel BTF file (as
// a mount that hides /sys/kernel/btf/vmlinux leaves it) is one line that
// says to pass --btf FILE, where the loader said "parsing .BTF header:
// read header: buffer too small"; real BTF and a missing file pass.
func TestCheckKernelBTF(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A BTF header, little-endian: magic, version 1, flags 0, hdr_len 24.
	hdr := []byte{0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	for _, c := range []struct {
		name string
		path string
		want string // "" for no error
	}{
		{"empty", write("empty", nil), "is empty"},
		{"cut short", write("short", hdr[:10]), "is cut short"},
		{"not BTF", write("elf", append([]byte("\x7fELF"), make([]byte, 40)...)), "is not BTF"},
		{"a BTF header", write("btf", hdr), ""},
		{"missing", filepath.Join(dir, "missing"), ""},
	} {
		err := checkKernelBTF(c.path)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v, want no error", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error, want %q", c.name, c.want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || !strings.Contains(msg, "pass --btf FILE") || strings.Contains(msg, "\n") {
			t.Errorf("%s: %q, want one line with %q and pass --btf FILE", c.name, msg, c.want)
		}
		if e, ok := err.(*exitError); !ok || e.code != 2 {
			t.Errorf("%s: %#v, want exit status 2", c.name, err)
		}
	}
	if _, err := os.Stat(vmlinuxBTF); err == nil {
		if err := checkKernelBTF(vmlinuxBTF); err != nil {
			t.Errorf("this kernel's own BTF: %v", err)
		}
	}
}

// TestBTFFileRefusedFirst: a --btf file that is not there, or empty, is
// one line and exit status 2 before anything starts; serve said where it
// served, then ended with the loader's error.
func TestBTFFileRefusedFirst(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.btf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "absent.btf"), empty, t.TempDir()} {
		done, err := withBTFFile(path)
		var ee *exitError
		if done || !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "read --btf "+path+": ") {
			t.Errorf("--btf %s: %v %v, want exit status 2 and read --btf %s: ...", path, done, err, path)
			continue
		}
		t.Logf("--btf %s: %v", path, err)
	}
}
