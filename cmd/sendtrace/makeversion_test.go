package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// On a fresh machine git is missing when make reads the Makefile, and
// `make deps build` installs it during the same run. The version must be
// computed when the build recipe runs, after deps, so the first build is
// stamped with its commit and not "dev". Here a git that works only once
// a stand-in for deps has run shows which of the two times make used.
func TestMakeStampsVersionAfterDeps(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Fatalf("make is needed (scripts/deps.sh installs it): %v", err)
	}
	dir := t.TempDir()
	installed := filepath.Join(dir, "git-installed")
	git := "#!/bin/sh\n[ -e " + installed + " ] || exit 127\necho v0-after-deps\n"
	if err := os.WriteFile(filepath.Join(dir, "git"), []byte(git), 0o755); err != nil {
		t.Fatal(err)
	}
	// -n prints the build recipe without running it; the stand-in for
	// deps runs even so ('+').
	cmd := exec.Command(makeBin, "-n", "-C", "../..", "--eval", "stand-in-deps: ; +@touch "+installed, "stand-in-deps", "build")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VERSION=") && !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "MAKEFLAGS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n stand-in-deps build: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "main.version=v0-after-deps") {
		t.Errorf("the build is not stamped with the version git gives once deps has run:\n%s", out)
	}
}
