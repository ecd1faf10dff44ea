package main

import (
	"time"

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

// periodicFlush offers a flush token every 200 ms.
func periodicFlush(done <-chan struct{}, tokens chan<- struct{}) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			select {
			case tokens <- struct{}{}:
			default:
			}
		}
	}
}
