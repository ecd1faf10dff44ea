#!/usr/bin/env bash
# Run commands inside Debian kernels under qemu. See vmtest/README.md.
#   vmtest/run.sh [--kernel all|5.10|6.1|6.12|7.2|arm64-5.10|...|latest|arm64-latest]
#                 [--timeout S] [--add HOST:GUEST] [--bin-dir DIR] [--commands FILE]
#                 [--cmd CMD] [--plans DIR] [-- CMD ARGS...]
#   vmtest/run.sh fetch [--kernel ...]
#   vmtest/run.sh pin [-w]        # the newest version of each pinned series
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

# Host tools the harness needs. Installed here when missing, as CI machines
# start from a plain image.
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need+=(busybox-static)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || need+=(iproute2)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || need+=(nftables)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v xz >/dev/null || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "vmtest: missing packages: ${need[*]} (install them as root)" >&2
		exit 2
	fi
	echo "vmtest: installing ${need[*]}" >&2
	apt-get install -y -q "${need[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${need[@]}" >&2; }
fi

cache=${VMTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sendtrace-vmtest}
mkdir -p "$cache/bin"
bin=$cache/bin/vmtest
(cd "$repo" && CGO_ENABLED=0 go build -o "$bin.new" ./vmtest) && mv "$bin.new" "$bin"
# The pin file the runner was built with is also the one `pin -w` writes.
export VMTEST_PINS=${VMTEST_PINS:-$here/kernels.pin}
exec "$bin" "$@"
