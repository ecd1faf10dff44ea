#!/bin/sh
# Runs inside a vmtest guest: starts `sendtrace serve`, waits until every
# probe is attached, and prints the kernel memory of its BPF maps (memlock
# from /proc/PID/fdinfo, one line per map) and its resident set, then stops
# it with SIGTERM. A line "mapmem cpus=N ... footprint=BYTES" sums it up.
# The ring buffer is mapped into the process (twice over, so a record can
# wrap): its pages show in RSS but are the map's memory, counted once in
# maps. footprint = maps + RSS outside those mappings.
set -eu
bin=${1:-sendtrace}
# A second argument sets serve's GOMAXPROCS.
if [ -n "${2:-}" ]; then
	export GOMAXPROCS="$2"
fi
ready=/tmp/mapmem.ready
rm -f "$ready"
"$bin" serve --events=false --ready-file "$ready" --listen 127.0.0.1:9464 >/tmp/mapmem.out 2>&1 &
pid=$!
i=0
while [ ! -e "$ready" ]; do
	i=$((i + 1))
	if [ $i -gt 600 ] || ! kill -0 $pid 2>/dev/null; then
		echo "mapmem: sendtrace serve did not attach within 60 s:" >&2
		cat /tmp/mapmem.out >&2
		exit 1
	fi
	sleep 0.1
done
# A scrape reads every map, as Prometheus does in a fleet.
wget -q -O /dev/null http://127.0.0.1:9464/metrics || true
sleep 1
cpus=$(grep -c ^processor /proc/cpuinfo)
possible=$(cat /sys/devices/system/cpu/possible)
maps=0
for f in /proc/$pid/fdinfo/*; do
	t=$(awk '$1 == "map_type:" {print $2}' "$f")
	[ -n "$t" ] || continue
	m=$(awk '$1 == "memlock:" {print $2}' "$f")
	n=$(awk '$1 == "max_entries:" {print $2}' "$f")
	v=$(awk '$1 == "value_size:" {print $2}' "$f")
	echo "mapmem map type=$t max_entries=$n value_size=$v memlock=$m"
	maps=$((maps + m))
done
rss=$(awk '$1 == "VmRSS:" {print $2 * 1024}' /proc/$pid/status)
grep -E '^(RssAnon|RssFile|VmHWM):' /proc/$pid/status | sed 's/^/mapmem status /'
maprss=$(awk '/^[0-9a-f]+-[0-9a-f]+ / {m = ($6 == "anon_inode:bpf-map")} m && $1 == "Rss:" {s += $2} END {print s * 1024}' /proc/$pid/smaps)
echo "mapmem cpus=$cpus possible=$possible maps=$maps rss=$rss rss_of_maps=$maprss footprint=$((maps + rss - maprss))"
kill -TERM $pid
wait $pid
