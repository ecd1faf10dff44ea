package events

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Names, texts and numbers are Linux's wherever sendtrace runs: a
// recording is often read on a laptop of another OS, where x/sys/unix and
// syscall would give that OS's numbers (macOS has no ECOMM, and its
// ECONNRESET is 54).

// Linux errnos the code tests for by name.
const (
	EPERM        int32 = 1
	EINTR        int32 = 4
	EAGAIN       int32 = 11
	EACCES       int32 = 13
	EPIPE        int32 = 32
	EDEADLK      int32 = 35
	ENOSYS       int32 = 38
	ECOMM        int32 = 70
	EMSGSIZE     int32 = 90
	EOPNOTSUPP   int32 = 95
	ENETUNREACH  int32 = 101
	ECONNABORTED int32 = 103
	ECONNRESET   int32 = 104
	ENOBUFS      int32 = 105
	ETIMEDOUT    int32 = 110
	ECONNREFUSED int32 = 111
	EHOSTUNREACH int32 = 113
)

// Address families and IP protocols, as Linux numbers them.
const (
	AFUnix    uint16 = 1
	AFInet    uint16 = 2
	AFInet6   uint16 = 10
	AFNetlink uint16 = 16
	AFPacket  uint16 = 17
	AFVsock   uint16 = 40
	AFXDP     uint16 = 44

	ProtoICMP    uint8 = 1
	ProtoTCP     uint8 = 6
	ProtoUDP     uint8 = 17
	ProtoICMPv6  uint8 = 58
	ProtoSCTP    uint8 = 132
	ProtoUDPLite uint8 = 136
	ProtoRaw     uint8 = 255
)

// Kernel-internal errnos from include/linux/errno.h. User space never sees
// them from a syscall, but the protocol's sendmsg can return them to the
// syscall layer (a signal interrupted a blocking send), so they show up at
// the stack layer and x/sys has no names for them.
const (
	ERESTARTSYS           = 512
	ERESTARTNOINTR        = 513
	ERESTARTNOHAND        = 514
	ENOIOCTLCMD           = 515
	ERESTART_RESTARTBLOCK = 516
)

var kernelErrnos = [...]struct {
	num  int32
	name string
	text string
}{
	{ERESTARTSYS, "ERESTARTSYS", "interrupted by a signal, restart the call"},
	{ERESTARTNOINTR, "ERESTARTNOINTR", "interrupted, always restart the call"},
	{ERESTARTNOHAND, "ERESTARTNOHAND", "interrupted by a signal without a handler, restart"},
	{ENOIOCTLCMD, "ENOIOCTLCMD", "ioctl command not implemented"},
	{ERESTART_RESTARTBLOCK, "ERESTART_RESTARTBLOCK", "interrupted, restart through restart_syscall"},
}

func kernelErrno(n int32) int {
	if n >= ERESTARTSYS && n <= ERESTART_RESTARTBLOCK {
		return int(n - ERESTARTSYS)
	}
	return -1
}

// ErrnoName returns the symbolic name of a positive errno ("ECOMM"), "" for
// 0, and the decimal number for a value with no name, so that the result
// always parses back with ParseErrno.
func ErrnoName(n int32) string {
	if n == 0 {
		return ""
	}
	if n > 0 {
		if i := linuxErrno(n); i >= 0 {
			return linuxErrnos[i].name
		}
		if i := kernelErrno(n); i >= 0 {
			return kernelErrnos[i].name
		}
	}
	return strconv.FormatInt(int64(n), 10)
}

// ErrnoText returns strerror's text for a positive errno ("communication
// error on send"), "" for 0, and "errno N" for a value the system does not
// describe.
func ErrnoText(n int32) string {
	if n == 0 {
		return ""
	}
	if i := kernelErrno(n); i >= 0 {
		return kernelErrnos[i].text
	}
	if i := linuxErrno(n); i >= 0 {
		return linuxErrnos[i].text
	}
	return "errno " + strconv.FormatInt(int64(n), 10)
}

// ErrnoString is the form people read: "ECOMM (communication error on
// send)", or "" for 0.
func ErrnoString(n int32) string {
	if n == 0 {
		return ""
	}
	name, text := ErrnoName(n), ErrnoText(n)
	if linuxErrno(n) < 0 && kernelErrno(n) < 0 {
		// Both would just repeat the number.
		return "errno " + name
	}
	return name + " (" + text + ")"
}

// Errnos on Linux are below 4096 (MAX_ERRNO).
const maxErrno = 4095

// linuxErrno returns n's index in linuxErrnos, or -1. The table is in
// number order with few gaps, so the index is at or just below n-1.
func linuxErrno(n int32) int {
	for i := min(int(n)-1, len(linuxErrnos)-1); i >= 0; i-- {
		switch e := linuxErrnos[i].num; {
		case e == n:
			return i
		case e < n:
			return -1
		}
	}
	return -1
}

var errnoByName = sync.OnceValue(func() map[string]int32 {
	m := make(map[string]int32, len(linuxErrnos)+len(kernelErrnos)+3)
	for _, e := range linuxErrnos {
		m[e.name] = e.num
	}
	for _, k := range kernelErrnos {
		m[k.name] = k.num
	}
	// The table lists one name per number; these second names for the
	// same numbers are what people often type.
	m["EWOULDBLOCK"] = EAGAIN
	m["EDEADLOCK"] = EDEADLK
	m["ENOTSUP"] = EOPNOTSUPP
	return m
})

// ParseErrno accepts an errno name such as "ECONNRESET" (any case) or a
// positive decimal number.
func ParseErrno(s string) (int32, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty errno: give a name such as ECONNRESET or a number")
	}
	if c := s[0]; c >= '0' && c <= '9' || c == '-' || c == '+' {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n <= 0 || n > maxErrno {
			return 0, fmt.Errorf("invalid errno %q: give a name such as ECONNRESET or a number from 1 to %d", s, maxErrno)
		}
		return int32(n), nil
	}
	if n, ok := errnoByName()[strings.ToUpper(s)]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown errno %q: give a name such as ECONNRESET or a number", s)
}

// TCP states from include/net/tcp_states.h. x/sys does not export them.
const (
	StateEstablished   = 1
	StateSynSent       = 2
	StateSynRecv       = 3
	StateFinWait1      = 4
	StateFinWait2      = 5
	StateTimeWait      = 6
	StateClose         = 7
	StateCloseWait     = 8
	StateLastAck       = 9
	StateListen        = 10
	StateClosing       = 11
	StateNewSynRecv    = 12
	StateBoundInactive = 13
)

var stateNames = [...]string{
	StateEstablished:   "ESTABLISHED",
	StateSynSent:       "SYN_SENT",
	StateSynRecv:       "SYN_RECV",
	StateFinWait1:      "FIN_WAIT1",
	StateFinWait2:      "FIN_WAIT2",
	StateTimeWait:      "TIME_WAIT",
	StateClose:         "CLOSE",
	StateCloseWait:     "CLOSE_WAIT",
	StateLastAck:       "LAST_ACK",
	StateListen:        "LISTEN",
	StateClosing:       "CLOSING",
	StateNewSynRecv:    "NEW_SYN_RECV",
	StateBoundInactive: "BOUND_INACTIVE",
}

// StateName returns the TCP state's name, "" for 0 (no state recorded) and
// the decimal number for a state this version does not know.
func StateName(s uint8) string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return strconv.Itoa(int(s))
}

// ParseStateName is the inverse of StateName. It accepts any case and, as
// ss(8) prints them, "ESTAB" and "-" separators ("FIN-WAIT-1").
func ParseStateName(s string) (uint8, error) {
	if s == "" {
		return 0, nil
	}
	u := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	switch u {
	case "ESTAB":
		return StateEstablished, nil
	case "FIN_WAIT_1":
		return StateFinWait1, nil
	case "FIN_WAIT_2":
		return StateFinWait2, nil
	case "UNCONN":
		return StateClose, nil
	}
	for i, n := range stateNames {
		if n != "" && n == u {
			return uint8(i), nil
		}
	}
	if n, err := strconv.ParseUint(u, 10, 8); err == nil {
		return uint8(n), nil
	}
	return 0, fmt.Errorf("unknown TCP state %q: give a name such as ESTABLISHED or SYN_SENT", s)
}

var familyNames = [...]struct {
	num  uint16
	name string
}{
	{AFInet, "inet"},
	{AFInet6, "inet6"},
	{AFUnix, "unix"},
	{AFNetlink, "netlink"},
	{AFPacket, "packet"},
	{AFVsock, "vsock"},
	{AFXDP, "xdp"},
}

// FamilyName returns "inet", "inet6", ... for an address family, "" for 0
// and the decimal number for others.
func FamilyName(f uint16) string {
	if f == 0 {
		return ""
	}
	for _, n := range familyNames {
		if n.num == f {
			return n.name
		}
	}
	return strconv.Itoa(int(f))
}

// ParseFamily is the inverse of FamilyName; it also takes "ipv4"/"ipv6"
// and the AF_ names.
func ParseFamily(s string) (uint16, error) {
	if s == "" {
		return 0, nil
	}
	l := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "af_")
	switch l {
	case "ipv4", "inet4", "4":
		return AFInet, nil
	case "ipv6", "6":
		return AFInet6, nil
	}
	for _, n := range familyNames {
		if n.name == l {
			return n.num, nil
		}
	}
	if n, err := strconv.ParseUint(l, 10, 16); err == nil {
		return uint16(n), nil
	}
	return 0, fmt.Errorf("unknown address family %q: give inet, inet6 or a number", s)
}

var protoNames = [...]struct {
	num  uint8
	name string
}{
	{ProtoTCP, "tcp"},
	{ProtoUDP, "udp"},
	{ProtoUDPLite, "udplite"},
	{ProtoSCTP, "sctp"},
	{ProtoICMP, "icmp"},
	{ProtoICMPv6, "icmpv6"},
	{ProtoRaw, "raw"},
	// MPTCP (262) does not fit in Event.Protocol; the kernel reports
	// MPTCP subflows as TCP anyway.
}

// ProtoName returns "tcp", "udp", ... for an IP protocol number, "" for 0
// and the decimal number for others.
func ProtoName(p uint8) string {
	if p == 0 {
		return ""
	}
	for _, n := range protoNames {
		if n.num == p {
			return n.name
		}
	}
	return strconv.Itoa(int(p))
}

// ParseProto is the inverse of ProtoName.
func ParseProto(s string) (uint8, error) {
	if s == "" {
		return 0, nil
	}
	l := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "ipproto_")
	for _, n := range protoNames {
		if n.name == l {
			return n.num, nil
		}
	}
	if n, err := strconv.ParseUint(l, 10, 8); err == nil {
		return uint8(n), nil
	}
	return 0, fmt.Errorf("unknown protocol %q: give tcp, udp or a number", s)
}
