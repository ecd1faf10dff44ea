package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Namespace is one network namespace's sysctls in a recording, with what
// the recording saw from it.
type Namespace struct {
	Name  string `json:"netns"` // net:[INODE]
	Inode uint64 `json:"inode"`
	// From says where the values were read: "header" (at start) or
	// "footer" (when the namespace's first event was seen).
	From string `json:"from"`
	PID  uint32 `json:"pid,omitempty"` // the process whose namespace was entered; 0: sendtrace's own
	Comm string `json:"comm,omitempty"`
	Note string `json:"note,omitempty"`
	// Events is how many events came from the namespace; Served lists
	// the processes (comm) and destinations they involved.
	Events         uint64            `json:"events"`
	Served         []string          `json:"served,omitempty"`
	Sysctls        map[string]string `json:"sysctls"`
	SysctlsMissing []string          `json:"sysctls_missing,omitempty"`
}

// netnsSeen is what the events of one namespace involved.
type netnsSeen struct {
	events uint64
	served map[string]bool
}

// maxServed bounds the comms and destinations kept per namespace.
const maxServed = 64

func (r *Recording) observeNetns(e *events.Event) {
	if e.Netns == 0 {
		return
	}
	if r.netns == nil {
		r.netns = map[uint32]*netnsSeen{}
	}
	s := r.netns[e.Netns]
	if s == nil {
		s = &netnsSeen{served: map[string]bool{}}
		r.netns[e.Netns] = s
	}
	s.events++
	r.notePIDNetns(e)
	if len(s.served) < maxServed {
		if e.OwnerKnown && e.Comm != "" {
			s.served["comm "+e.Comm] = true
		}
		if e.Dst.IsValid() {
			s.served["dst "+e.Dst.String()] = true
		}
	}
}

// Namespaces lists the header's namespace, then those the footer added,
// each with the events that came from it.
func (r *Recording) Namespaces() []Namespace {
	h := r.Header
	out := []Namespace{{
		Name: session.NetnsName(h.Netns.Inode), Inode: h.Netns.Inode, From: "header", PID: h.Netns.PID,
		Note: h.Netns.Note, Sysctls: h.Sysctls, SysctlsMissing: h.SysctlsMissing,
	}}
	if r.Footer != nil {
		for _, n := range r.Footer.Namespaces {
			out = append(out, Namespace{
				Name: session.NetnsName(n.Netns.Inode), Inode: n.Netns.Inode, From: "footer", PID: n.Netns.PID,
				Comm: n.Comm, Note: n.Netns.Note, Sysctls: n.Sysctls, SysctlsMissing: n.SysctlsMissing,
			})
		}
	}
	for i := range out {
		if s := r.netns[uint32(out[i].Inode)]; s != nil && out[i].Inode != 0 {
			out[i].Events = s.events
			for k := range s.served {
				out[i].Served = append(out[i].Served, k)
			}
			slices.Sort(out[i].Served)
		}
	}
	return out
}

// served returns the namespaces that events came from; when the events
// do not say (older recordings), the header's alone.
func (r *Recording) served() []Namespace {
	all := r.Namespaces()
	var out []Namespace
	for _, n := range all {
		if n.Events > 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return all[:1]
	}
	return out
}

// nsPair is two namespaces compared with each other, and why.
type nsPair struct {
	before, after Namespace
	why           string
	score         int // processes and destinations both served; -1: the only pair
}

// matchNamespaces pairs the namespaces of two recordings: when each
// served from one namespace, those two; otherwise each of before's with
// the one of after's that served the most of the same processes and
// destinations.
func matchNamespaces(a, b *Recording) ([]nsPair, []string) {
	sa, sb := a.served(), b.served()
	if len(sa) == 1 && len(sb) == 1 {
		return []nsPair{{sa[0], sb[0], "the one namespace each recording's events came from", -1}}, nil
	}
	var pairs []nsPair
	var notes []string
	for _, x := range sa {
		best, score := -1, 0
		for i, y := range sb {
			n := 0
			for _, k := range x.Served {
				if slices.Contains(y.Served, k) {
					n++
				}
			}
			if n > score {
				best, score = i, n
			}
		}
		if best < 0 {
			notes = append(notes, fmt.Sprintf("%s (before) served no process or destination that after saw: its sysctls are not compared", x.Name))
			continue
		}
		pairs = append(pairs, nsPair{x, sb[best], fmt.Sprintf("both served %d of the same processes and destinations", score), score})
	}
	return pairs, notes
}

// namespaceText says which namespace values belong to.
func namespaceText(n Namespace) string {
	who := "sendtrace's own"
	switch {
	case n.PID != 0 && n.Comm != "":
		who = "entered through " + format.Process(n.Comm, n.PID, true)
	case n.PID != 0:
		who = "entered through pid " + strconv.FormatUint(uint64(n.PID), 10)
	}
	return fmt.Sprintf("%s (%s, read at %s, %d events)", n.Name, who, map[string]string{"header": "start", "footer": "its first event"}[n.From], n.Events)
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}

// writeSysctls prints the first namespace's sysctls in full and, for each
// other namespace, those that differ from it.
func writeSysctls(ew *errWriter, nss []Namespace) {
	var first *Namespace
	for i := range nss {
		n := &nss[i]
		ew.printf("\nSysctls of %s\n", namespaceText(*n))
		if n.Note != "" {
			ew.printf("  note: %s\n", format.Printable(n.Note))
		}
		if len(n.Sysctls) == 0 {
			ew.printf("  none recorded\n")
			continue
		}
		tw := ew.table()
		shown := 0
		for _, k := range sortedNames(n.Sysctls) {
			if first != nil && first.Sysctls[k] == n.Sysctls[k] {
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\n", format.Printable(k), format.Printable(n.Sysctls[k]))
			shown++
		}
		ew.flush(tw)
		if first != nil {
			ew.printf("  (%d differ from %s; the other %d are the same)\n", shown, first.Name, len(n.Sysctls)-shown)
		} else {
			first = n
		}
	}
}
