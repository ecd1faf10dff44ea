package tracer

import (
	"fmt"
	"io"
	"time"
)

// lossNotice tells the person watching, at most once a second, that the
// reader is falling behind, while it happens: the exit summary would say
// so only when it is too late to act (a bigger --ring-mib, a narrower
// filter). The counts stay exact because the kernel keeps its totals
// before the ring buffer.
type lossNotice struct {
	w        io.Writer
	last     uint64    // kernel loss counter at the last check that spoke or started
	lastTime time.Time // when last was taken
}

func (n *lossNotice) check(now time.Time, lost uint64) {
	if n.w == nil {
		return
	}
	if n.lastTime.IsZero() {
		n.last, n.lastTime = lost, now
		return
	}
	if now.Sub(n.lastTime) < time.Second {
		return
	}
	if lost > n.last {
		fmt.Fprintf(n.w, "sendtrace: %d events lost in the last %s: the reader is behind; counts stay exact\n",
			lost-n.last, period(now.Sub(n.lastTime)))
	}
	n.last, n.lastTime = lost, now
}

func period(d time.Duration) string {
	if d < 1500*time.Millisecond {
		return "second"
	}
	return fmt.Sprintf("%.0f seconds", d.Seconds())
}
