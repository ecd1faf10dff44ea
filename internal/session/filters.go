package session

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sendtrace/sendtrace/internal/events"
)

// Filters select which events the kernel emits. They are applied in BPF,
// before any map is touched, and cover async events through socket
// ownership.
type Filters struct {
	PIDs    []uint32       // thread-group ids
	Comms   []string       // exact task comm (at most 15 bytes)
	Cgroups []uint64       // cgroup v2 ids
	Dsts    []netip.Prefix // destination CIDRs, v4 or v6
	Ports   []uint16       // destination ports
	Errnos  []int32        // positive errnos; events without an errno still pass
}

// filtersJSON is how recordings store filters: prefixes and errnos as
// people write them.
type filtersJSON struct {
	PIDs    []uint32 `json:"pids,omitempty"`
	Comms   []string `json:"comms,omitempty"`
	Cgroups []uint64 `json:"cgroups,omitempty"`
	Dsts    []string `json:"dsts,omitempty"`
	Ports   []uint16 `json:"ports,omitempty"`
	Errnos  []string `json:"errnos,omitempty"`
}

// MarshalJSON writes prefixes and errno names as text.
func (f Filters) MarshalJSON() ([]byte, error) {
	j := filtersJSON{PIDs: f.PIDs, Comms: f.Comms, Cgroups: f.Cgroups, Ports: f.Ports}
	for _, p := range f.Dsts {
		j.Dsts = append(j.Dsts, p.String())
	}
	for _, n := range f.Errnos {
		j.Errnos = append(j.Errnos, events.ErrnoName(n))
	}
	return json.Marshal(j)
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (f *Filters) UnmarshalJSON(b []byte) error {
	var j filtersJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Filters{PIDs: j.PIDs, Comms: j.Comms, Cgroups: j.Cgroups, Ports: j.Ports}
	for _, s := range j.Dsts {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("filter dst %q: %w", s, err)
		}
		f.Dsts = append(f.Dsts, p)
	}
	for _, s := range j.Errnos {
		n, err := events.ParseErrno(s)
		if err != nil {
			return fmt.Errorf("filter errno: %w", err)
		}
		f.Errnos = append(f.Errnos, n)
	}
	return nil
}

// ProcessFilter says whether the filters select processes (so events of
// sockets with no known owner are dropped).
func (f *Filters) ProcessFilter() bool {
	return len(f.PIDs)+len(f.Comms)+len(f.Cgroups) > 0
}

// String is the filters as flags would give them ("pid=12 dst=198.18.0.0/15"),
// or "" for none.
func (f Filters) String() string {
	var parts []string
	for _, p := range f.PIDs {
		parts = append(parts, "pid="+strconv.FormatUint(uint64(p), 10))
	}
	for _, c := range f.Comms {
		parts = append(parts, "comm="+c)
	}
	for _, c := range f.Cgroups {
		parts = append(parts, "cgroup="+strconv.FormatUint(c, 10))
	}
	for _, d := range f.Dsts {
		parts = append(parts, "dst="+d.String())
	}
	for _, p := range f.Ports {
		parts = append(parts, "port="+strconv.FormatUint(uint64(p), 10))
	}
	for _, n := range f.Errnos {
		parts = append(parts, "errno="+events.ErrnoName(n))
	}
	return strings.Join(parts, " ")
}
