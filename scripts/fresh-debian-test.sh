#!/usr/bin/env bash
# Runs the README's build command in a fresh Debian 12 root, as a newcomer
# would on a stock machine: bookworm made by debootstrap (minbase, which has
# less than a cloud image) with only sudo added. It proves that the command
# installs make, git and Go before it needs them, that the build works, that
# the first build is stamped with its git version, not "dev", that `go` is
# then on PATH for the README's `go build`, and that every tool the test
# command runs (python3, runc, prometheus, chromium...) is installed.
#
# It takes about 9 minutes on a 2-core machine (apt downloads the test dependencies: clang,
# qemu, bpftrace), so CI does not run it. Run it as root:
#
#   scripts/fresh-debian-test.sh [--rev REV] [--base DIR] [--modcache DIR] [--command CMD]
#
#   --rev REV       commit to test (default HEAD); it is cloned into the root
#   --base DIR      debootstrapped root to start from, made there when missing
#                   (default /var/tmp/sendtrace-bookworm); every run works on a copy
#   --modcache DIR  bind-mount this Go module cache, e.g. "$(go env GOMODCACHE)",
#                   so the modules are not downloaded again
#   --command CMD   run CMD in the source tree instead of the README's build
#                   command, e.g. 'apt-get install -y make && make deps build'
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rev=HEAD
base=/var/tmp/sendtrace-bookworm
modcache=
command=
while (($#)); do
	case $1 in
	--rev) rev=$2; shift 2 ;;
	--base) base=$2; shift 2 ;;
	--modcache) modcache=$2; shift 2 ;;
	--command) command=$2; shift 2 ;;
	*) echo "usage: $0 [--rev REV] [--base DIR] [--modcache DIR] [--command CMD]" >&2; exit 2 ;;
	esac
done
[[ $(id -u) -eq 0 ]] || { echo "run as root: it makes a chroot" >&2; exit 2; }

if [[ ! -x $base/usr/bin/sudo ]]; then
	command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
	rm -rf "$base"
	debootstrap --variant=minbase --include=sudo bookworm "$base" http://deb.debian.org/debian
fi

root=$(mktemp -d /var/tmp/sendtrace-fresh.XXXXXX)
mounts=()
cleanup() {
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
	rm -rf "$root"
}
trap cleanup EXIT
cp -a "$base/." "$root/"
cp /etc/resolv.conf /etc/hosts "$root/etc/"
# Certificates this machine trusts locally (a TLS-inspecting proxy's CA):
# the root's ca-certificates, once installed, trusts them too.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
	mkdir -p "$root/usr/local/share/ca-certificates"
	cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
# The root is a mount point, as / is on a real machine: `ip netns exec`
# (and `ip -n`) make / a slave mount in their own namespace, which fails
# with EINVAL on a plain directory.
mount --bind "$root" "$root"
mounts+=("$root")
for m in proc sys dev; do
	mount --rbind "/$m" "$root/$m"
	mount --make-rslave "$root/$m"
	mounts+=("$root/$m")
done
if [[ -n $modcache ]]; then
	mkdir -p "$root/root/go/pkg/mod"
	mount --bind "$modcache" "$root/root/go/pkg/mod"
	mounts+=("$root/root/go/pkg/mod")
fi
git clone -q --no-hardlinks "$repo" "$root/src/sendtrace"
git -C "$root/src/sendtrace" checkout -q "$(git -C "$repo" rev-parse "$rev")"
want_version=$(git -C "$root/src/sendtrace" describe --tags --always --dirty)

if [[ -z $command ]]; then
	# The README's build command, up to the run of sendtrace itself.
	command=$(grep -m1 '^sudo .* build' "$root/src/sendtrace/README.md")
	command=${command%% && sudo ./sendtrace*}
fi
echo "fresh-debian: running in a fresh bookworm root: $command"

failed=0
checks=0
check() {
	checks=$((checks + 1))
	if chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		bash -c "cd /src/sendtrace && $1"; then
		echo "fresh-debian: PASS: $2"
	else
		echo "fresh-debian: FAIL: $2"
		failed=$((failed + 1))
	fi
}
check "$command" "the build command ($command)"
check 'command -v make git && test -x /usr/local/go/bin/go' "make, git and go are installed"
check 'go version && go build -o /tmp/sendtrace-gobuild ./cmd/sendtrace' "go is on PATH: the README's go build ./cmd/sendtrace works"
# What the test command runs besides Go: scripts/deps.sh must have put each
# of them here (grep the tests for exec.Command and LookPath).
tools='python3 setpriv unshare setcap runc prometheus promtool systemd-analyze node chromium iperf3 strace bpftrace bpftool jq zstdcat curl ip ss tc nstat nft clang-19 llvm-strip-19 qemu-system-x86_64 qemu-system-aarch64'
check "missing=; for t in $tools; do command -v \$t >/dev/null || missing=\"\$missing \$t\"; done; [[ -z \$missing ]] || { echo \"not installed:\$missing\"; false; }" "the tools the tests run are installed"
check "v=\$(./sendtrace --version) && echo \"\$v\" && [[ \$v == *' $want_version' ]]" "the binary is stamped $want_version"
check './sendtrace check >/dev/null' "sendtrace check runs"
echo "fresh-debian: $((checks - failed)) passed, $failed failed"
((failed == 0))
