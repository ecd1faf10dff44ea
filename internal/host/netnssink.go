package host

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/procstate"
	"github.com/sendtrace/sendtrace/internal/session"
)

// NetnsSysctls is a sink that reads the send sysctls of every network
// namespace the events come from, once each, when its first event is
// seen: a system-wide recording serves clients in many namespaces (every
// pod has its own), and the header could only hold one, read at start.
// A namespace is entered through /proc/PID/ns/net of the event's owner,
// or of any process still in it when the owner has exited (a container's
// short-lived client, while its PID 1 stays), which needs CAP_SYS_ADMIN;
// without it the namespace is listed with a note instead of values.
type NetnsSysctls struct {
	warn   io.Writer // one line when a namespace cannot be entered
	seen   map[uint32]bool
	out    []session.NetnsSysctls
	warned bool
}

// NewNetnsSysctls returns the sink; warnings go to warn.
func NewNetnsSysctls(warn io.Writer) *NetnsSysctls {
	return &NetnsSysctls{warn: warn, seen: map[uint32]bool{}}
}

// Begin notes the namespace the header already holds.
func (n *NetnsSysctls) Begin(d *session.Description) error {
	if d.Netns.Inode != 0 && len(d.Sysctls) > 0 {
		n.seen[uint32(d.Netns.Inode)] = true
	}
	return nil
}

// Event reads the sysctls of a namespace seen for the first time.
func (n *NetnsSysctls) Event(e *events.Event) error {
	if e.Netns == 0 || n.seen[e.Netns] {
		return nil
	}
	n.seen[e.Netns] = true
	n.out = append(n.out, n.read(e))
	return nil
}

func (n *NetnsSysctls) read(e *events.Event) session.NetnsSysctls {
	ns := session.NetnsSysctls{Netns: session.Netns{PID: e.PID, Inode: uint64(e.Netns)}, Comm: e.Comm, Sysctls: map[string]string{}}
	name := session.NetnsName(uint64(e.Netns))
	if !e.OwnerKnown || e.PID == 0 {
		ns.Netns.Note = "sysctls not recorded: no process is known to own the socket that was seen in " + name
		return ns
	}
	// 0: not allowed to look (another user's process), which entering
	// will say, or the process is gone (a zombie is in no namespace).
	var snap *Snapshot
	var err error
	if ino := NetnsInode(e.PID); ino != uint64(e.Netns) && (ino != 0 || !procstate.Alive(int(e.PID))) {
		// The owner exited (a short-lived client, reaped or not) or left:
		// any process still in the namespace, or its name in /run/netns,
		// reaches it.
		r, ok := findNetnsRoute(uint64(e.Netns), e.PID)
		if !ok {
			ns.Netns.Note = fmt.Sprintf("sysctls not recorded: pid %d had left %s (or exited) before it could be read, and no other process was in it", e.PID, name)
			return ns
		}
		if r.path != "" {
			ns.Netns.PID, ns.Comm = 0, ""
			snap, err = readSysctlsAt(r.path)
		} else {
			ns.Netns.PID, ns.Comm = r.pid, readComm(r.pid)
			snap, err = ReadSysctls(r.pid)
		}
	} else {
		snap, err = ReadSysctls(e.PID)
	}
	switch {
	case err == nil && snap.Netns.Inode == uint64(e.Netns):
		ns.Sysctls, ns.SysctlsMissing = snap.Values, snap.Missing
	case err == nil:
		ns.Netns.Note = fmt.Sprintf("sysctls not recorded: pid %d left %s while it was read", ns.Netns.PID, name)
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		ns.Netns.Note = fmt.Sprintf("sysctls not recorded: entering %s (pid %d) needs CAP_SYS_ADMIN", name, ns.Netns.PID)
		if !n.warned && n.warn != nil {
			n.warned = true
			fmt.Fprintf(n.warn, "sendtrace: recording without the sysctls of other network namespaces (first %s, pid %d): entering them needs CAP_SYS_ADMIN\n", name, e.PID)
		}
	default:
		ns.Netns.Note = fmt.Sprintf("sysctls not recorded: %v", err)
	}
	return ns
}

// NetnsSysctls returns the sysctls read for a namespace, nil when it has
// not been read (or could not be): the diagnosis names the recorded
// setting that ended a timed-out connection.
func (n *NetnsSysctls) NetnsSysctls(netns uint32) map[string]string {
	for i := range n.out {
		if n.out[i].Netns.Inode == uint64(netns) {
			return n.out[i].Sysctls
		}
	}
	return nil
}

// End hands the namespaces to the sinks after it (the recorder's footer).
func (n *NetnsSysctls) End(end *session.End) error {
	end.Namespaces = append(end.Namespaces, n.out...)
	return nil
}
