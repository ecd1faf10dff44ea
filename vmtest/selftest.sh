#!/usr/bin/env bash
# Self-test of the VM harness: build vmtest/guestcheck static and run it in
# every kernel, once with the kernel's BTF in sysfs and once with it hidden.
#   vmtest/selftest.sh [run.sh flags, e.g. --kernel 6.1]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for arch in amd64 arm64; do
	(cd "$repo" && CGO_ENABLED=0 GOARCH=$arch go build -o "$out/$arch/guestcheck" ./vmtest/guestcheck)
done
cat >"$out/commands" <<'CMDS'
# Runs in every kernel.
uname -r
[timeout=120] guestcheck
[nobtf,timeout=60] guestcheck -no-net -btf /btf/vmlinux
CMDS
exec "$here/run.sh" --timeout 300 --bin-dir amd64="$out/amd64" --bin-dir arm64="$out/arm64" --commands "$out/commands" "$@"
