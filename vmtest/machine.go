package main

// machine is how qemu runs a guest of one architecture. The kernel's
// console goes to the first serial port (a log file); the results travel
// on a channel of their own that only init writes to, so kernel messages
// cannot interleave with them.
type machine struct {
	qemu string
	// tcg selects the board and CPU under TCG; kvm under KVM (host
	// architecture only).
	tcg, kvm []string
	console  string // the kernel's console device
	// channel is the guest device init writes the results to, and
	// channelArgs connect it to qemu's stdio.
	channel     string
	channelArgs []string
	// channelModules are loaded (with their dependencies) before init
	// opens the channel, when the kernel has them as modules.
	channelModules []string
	smp            int // default guest CPUs
	// tcgTimeScale is how many times slower than the host a guest runs
	// the tests under TCG, roughly: init exports it as VMTEST_TIME_SCALE
	// and the tests stretch their time limits by it (package timescale).
	// Under KVM it is 1.
	tcgTimeScale int
}

var machines = map[string]machine{
	"amd64": {
		qemu:         "qemu-system-x86_64",
		tcg:          []string{"-accel", "tcg", "-cpu", "max"},
		kvm:          []string{"-accel", "kvm", "-cpu", "host"},
		console:      "ttyS0",
		channel:      "/dev/ttyS1",
		channelArgs:  []string{"-serial", "stdio"},
		smp:          1,
		tcgTimeScale: 5,
	},
	// The virt board has one UART, so the results use a virtio console.
	// pauth-impdef=on: the architected pointer-authentication algorithm
	// (QARMA) is slow to emulate; the implementation-defined one boots
	// three times faster and the guest cannot tell.
	"arm64": {
		qemu:    "qemu-system-aarch64",
		tcg:     []string{"-M", "virt", "-accel", "tcg", "-cpu", "max,pauth-impdef=on"},
		console: "ttyAMA0",
		channel: "/dev/hvc0",
		channelArgs: []string{"-device", "virtio-serial-device",
			"-chardev", "stdio,id=results", "-device", "virtconsole,chardev=results"},
		channelModules: []string{"virtio_mmio", "virtio_console"},
		smp:            2,
		tcgTimeScale:   10,
	},
}
