package sockowner

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Listener is a listening TCP socket of a selected process: the sockets
// accepted from it are born in the kernel before accept() gives them a
// descriptor, and take their owner from it by namespace and port.
type Listener struct {
	Netns uint32 // inode of its network namespace
	Port  uint16
	Proc  Proc
	// Ambiguous: processes of different pids listen on this port in
	// this namespace (SO_REUSEPORT), so no one owner can be given.
	Ambiguous bool
}

// tcpListen is the state column of /proc/net/tcp for TCP_LISTEN.
const tcpListen = "0A"

// Listeners scans again and returns the listening TCP sockets the
// selected processes hold, one per namespace and port.
func (f *Finder) Listeners() []Listener {
	f.Scan()
	type nsPort struct {
		netns uint32
		port  uint16
	}
	ports := map[uint32]map[uint64]uint16{} // by namespace: listening inode -> port
	found := map[nsPort]*Listener{}
	var order []nsPort
	for ino, p := range f.fresh {
		netns := f.netns(p.PID)
		if netns == 0 {
			continue
		}
		byIno, ok := ports[netns]
		if !ok {
			byIno = f.listening(p.PID)
			ports[netns] = byIno
		}
		port, ok := byIno[ino]
		if !ok {
			continue
		}
		k := nsPort{netns, port}
		if l, dup := found[k]; dup {
			if l.Proc.PID != p.PID {
				l.Ambiguous = true
			}
			continue
		}
		found[k] = &Listener{Netns: netns, Port: port, Proc: p}
		order = append(order, k)
	}
	out := make([]Listener, 0, len(order))
	for _, k := range order {
		out = append(out, *found[k])
	}
	return out
}

// netns is the inode of a process's network namespace; 0 when unknown.
func (f *Finder) netns(pid uint32) uint32 {
	var st syscall.Stat_t
	if syscall.Stat(filepath.Join(f.ProcRoot, strconv.FormatUint(uint64(pid), 10), "ns", "net"), &st) != nil {
		return 0
	}
	return uint32(st.Ino)
}

// listening reads the listening sockets of a process's namespace from its
// /proc/PID/net/tcp and tcp6: socket inode to local port.
func (f *Finder) listening(pid uint32) map[uint64]uint16 {
	out := map[uint64]uint16{}
	for _, name := range []string{"tcp", "tcp6"} {
		file, err := os.Open(filepath.Join(f.ProcRoot, strconv.FormatUint(uint64(pid), 10), "net", name))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != tcpListen {
				continue
			}
			_, portHex, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			port, err1 := strconv.ParseUint(portHex, 16, 16)
			ino, err2 := strconv.ParseUint(fields[9], 10, 64)
			if err1 == nil && err2 == nil {
				out[ino] = uint16(port)
			}
		}
		file.Close()
	}
	return out
}
