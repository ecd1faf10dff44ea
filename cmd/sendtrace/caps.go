//go:build linux

package main

import (
	"golang.org/x/sys/unix"
)

const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

type capSet [2]uint32

func (c capSet) has(bit int) bool { return c[bit/32]&(1<<(bit%32)) != 0 }

func effectiveCaps() (capSet, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return capSet{}, err
	}
	return capSet{data[0].Effective, data[1].Effective}, nil
}
