#!/bin/sh
# Measures the kernel memory of sendtrace's BPF maps and its resident set
# in vmtest guests (Debian's 6.12 amd64 kernel) with few and with many
# CPUs, and extrapolates linearly to a large node:
#
#   bench/mapmem/run.sh [--small 2] [--large 16] [--target-cpus 96] [--kernel 6.12] [--gomaxprocs N]
#
# --gomaxprocs sets GOMAXPROCS in serve's environment, as the systemd unit
# does and as the Go runtime derives it from a container's CPU limit.
#
# 16 vCPUs under TCG boot slowly (a few minutes on a 2-core machine).
set -eu
small=2 large=16 target=96 kernel=6.12 gomaxprocs=
while [ $# -gt 0 ]; do
	case $1 in
	--small) small=$2; shift 2 ;;
	--large) large=$2; shift 2 ;;
	--target-cpus) target=$2; shift 2 ;;
	--kernel) kernel=$2; shift 2 ;;
	--gomaxprocs) gomaxprocs=$2; shift 2 ;;
	*) echo "usage: $0 [--small N] [--large N] [--target-cpus N] [--kernel LABEL] [--gomaxprocs N]" >&2; exit 2 ;;
	esac
done
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
(cd "$root" && CGO_ENABLED=0 go build -o "$tmp/bin/sendtrace" ./cmd/sendtrace)
for n in $small $large; do
	"$root/vmtest/run.sh" --kernel "$kernel" --smp "$n" --timeout 900 --bin-dir "$tmp/bin" \
		--add "$root/bench/mapmem/guest.sh:/vmtest/mapmem.sh" -- /vmtest/mapmem.sh sendtrace $gomaxprocs >"$tmp/out.$n" 2>&1 ||
		{ cat "$tmp/out.$n" >&2; exit 1; }
	grep 'mapmem ' "$tmp/out.$n" | sed 's/^\[[^]]*\] //'
done
grep -h 'mapmem cpus=' "$tmp/out.$small" "$tmp/out.$large" | sed 's/^\[[^]]*\] //' | awk -v target="$target" '
function field(name,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] } }
{ cpus[NR] = field("cpus"); maps[NR] = field("maps"); rss[NR] = field("rss") - field("rss_of_maps"); fp[NR] = field("footprint") }
END {
	MiB = 1048576
	d = cpus[2] - cpus[1]
	printf "%-28s %10s %10s %14s %12s\n", "", cpus[1] " CPUs", cpus[2] " CPUs", "per extra CPU", target " CPUs"
	row("BPF maps (memlock)", maps)
	row("RSS outside the maps", rss)
	row("footprint", fp)
}
function row(name, v,   per) {
	per = (v[2] - v[1]) / d
	printf "%-28s %9.1fM %9.1fM %13.1fK %11.1fM\n", name, v[1] / MiB, v[2] / MiB, per / 1024, (v[1] + per * (target - cpus[1])) / MiB
}'
