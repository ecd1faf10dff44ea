#!/bin/busybox sh
# Guest /init for sendtrace's VM tests (see vmtest/README.md).
#
# Protocol: everything the host reads goes to the results channel ($CHANNEL
# in /vmtest/config: the second serial port /dev/ttyS1 on amd64, a virtio
# console /dev/hvc0 on arm64), one record per line, each starting with
# "@@VMTEST@@ ":
#   BOOT release=R uptime=T      init started
#   MODFAIL file message         insmod failed (the run goes on)
#   READY uptime=T               modules loaded, about to run commands
#   BEGIN i                      command i starts
#   OUT i text                   one line of its output (stdout+stderr)
#   END i rc=N timeout=0|1 start=T end=T
#                                command i finished with exit status N
#                                (timeout=1: killed by its time limit)
#   DONE uptime=T                all commands ran; powering off
# The kernel's own console is the first serial port, so its messages never
# mix with these.

/bin/busybox mkdir -p /proc /sys /dev /run /tmp /root /bin
/bin/busybox --install -s /bin
export PATH=/vmtest/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
# tracefs (and debugfs, which would mount it automatically) is left
# unmounted on purpose: the product must work without it.

. /vmtest/config
# The channel's own modules (a virtio console) come first; its device
# appears once the driver has probed, which may take a moment.
for m in $(cat /vmtest/early-modules.list); do
	insmod /vmtest/modules/$m || echo "vmtest: insmod $m failed" >/dev/console
done
# The device node can exist before its port is ready (opening it then
# fails with ENODEV), and a failed redirection on exec would end init, so
# wait until a subshell can open it; only once it is a character device,
# so that the probe never creates a plain file in its place.
n=0
while ! { [ -c "$CHANNEL" ] && (: >>"$CHANNEL") 2>/dev/null; } && [ "$n" -lt 100 ]; do
	sleep 0.1
	n=$((n + 1))
done
stty -F "$CHANNEL" raw -echo 2>/dev/null
exec 3>"$CHANNEL"
say() { echo "@@VMTEST@@ $*" >&3; }
now() { read -r up _ </proc/uptime; echo "$up"; }

export VMTEST_KERNEL="$KERNEL" VMTEST_ARCH="$ARCH"
# From the kernel command line (the runner sets it by accelerator): how
# many times slower than the host this guest runs; tests stretch their
# time limits by it.
export VMTEST_TIME_SCALE="${VMTEST_TIME_SCALE:-1}"
export VMTEST_KREL="$(uname -r)"
export VMTEST_BTF=/btf/vmlinux
say BOOT release=$VMTEST_KREL uptime=$(now)

for m in $(cat /vmtest/modules.list); do
	out=$(insmod /vmtest/modules/$m 2>&1) || say MODFAIL $m $out
done
ip link set lo up 2>/dev/null

# Keep a copy of the kernel's BTF so that commands run with "nobtf" (an
# empty file bind-mounted over /sys/kernel/btf/vmlinux) can be given it
# with --btf /btf/vmlinux.
mkdir -p /btf
[ -s /sys/kernel/btf/vmlinux ] && cp /sys/kernel/btf/vmlinux /btf/vmlinux
: >/btf/empty

say READY uptime=$(now)

i=1
while [ "$i" -le "$NCMDS" ]; do
	n=$(printf %03d "$i")
	tmo=0
	nobtf=
	for o in $(cat /vmtest/cmd/$n.opt); do
		case "$o" in
		timeout=*) tmo=${o#timeout=} ;;
		nobtf) nobtf=1 ;;
		esac
	done
	if [ -n "$nobtf" ]; then
		mount --bind /btf/empty /sys/kernel/btf/vmlinux 2>&1 | sed "s/^/@@VMTEST@@ OUT $i nobtf: /" >&3
	fi
	rm -f /tmp/.vmtest-rc /tmp/.vmtest-timedout
	say BEGIN $i
	t0=$(now)
	{
		cd /root
		# Each command gets a session of its own, so that a timeout, and
		# the clean-up afterwards, reach everything it started.
		setsid /bin/sh /vmtest/cmd/$n.sh </dev/null &
		pid=$!
		wd=
		if [ "$tmo" -gt 0 ]; then
			(
				sleep "$tmo" </dev/null >/dev/null 2>&1
				: >/tmp/.vmtest-timedout
				echo "vmtest: command timed out after ${tmo}s; killing it"
				kill -s KILL -$pid
			) &
			wd=$!
		fi
		wait $pid
		echo $? >/tmp/.vmtest-rc
		kill -s KILL -$pid 2>/dev/null
		[ -n "$wd" ] && kill -s KILL $wd 2>/dev/null
	} </dev/null 2>&1 | sed "s/^/@@VMTEST@@ OUT $i /" >&3
	t1=$(now)
	rc=$(cat /tmp/.vmtest-rc 2>/dev/null)
	[ -n "$rc" ] || rc=255
	[ -n "$nobtf" ] && umount /sys/kernel/btf/vmlinux
	# The newline ends an output line that had none of its own.
	echo >&3
	to=0
	[ -e /tmp/.vmtest-timedout ] && to=1
	say END $i rc=$rc timeout=$to start=$t0 end=$t1
	i=$((i + 1))
done

say DONE uptime=$(now)
sync
poweroff -f
reboot -f
