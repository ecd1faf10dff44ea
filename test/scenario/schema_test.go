package scenario_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Event is one line of `sendtrace -o json`, as docs/json-schema.md
// (version 1) defines it. Optional fields are pointers so a test can tell
// "absent" from zero.
type Event struct {
	Time       string `json:"time"`
	Mono       uint64 `json:"mono_ns"`
	Kind       string `json:"kind"`
	PID        uint32 `json:"pid"`
	TID        uint32 `json:"tid"`
	Comm       string `json:"comm"`
	OwnerKnown bool   `json:"owner_known"`
	OwnerVia   string `json:"owner_via"` // optional: "proc" or absent
	Cgroup     uint64 `json:"cgroup"`
	Cookie     uint64 `json:"cookie"`
	Netns      uint32 `json:"netns"`
	Family     string `json:"family"`
	Proto      string `json:"proto"`
	Src        string `json:"src"`
	Dst        string `json:"dst"`
	State      string `json:"state"`
	Bytes      uint32 `json:"bytes"`
	Errno      int32  `json:"errno"`
	ErrnoName  string `json:"errno_name"`

	ErrnoText    *string  `json:"errno_text"`
	Layer        *string  `json:"layer"`
	Syscall      *string  `json:"syscall"`
	StackErrno   *int32   `json:"stack_errno"`
	RetransErrno *int32   `json:"retrans_errno"`
	RetransError *string  `json:"retrans_error"`
	RetransKind  *string  `json:"retrans_kind"`
	Segs         uint32   `json:"segs"`
	DropReason   *string  `json:"drop_reason"`
	DropLocation *string  `json:"drop_location"`
	DropDev      *string  `json:"drop_dev"`
	DropDir      *string  `json:"drop_dir"`
	OldState     *string  `json:"old_state"`
	ResetReason  *uint32  `json:"reset_reason"`
	TCP          *TCPInfo `json:"tcp"`

	Line int    `json:"-"` // 1-based line number in the stream
	Raw  string `json:"-"`
}

// TCPInfo is the `tcp` object. rto_ms and srtt_us may carry fractions.
type TCPInfo struct {
	SinceSendMs  float64 `json:"since_send_ms"`
	SinceRecvMs  float64 `json:"since_recv_ms"`
	Seq          uint32  `json:"seq"`
	Retransmits  uint32  `json:"retransmits"`
	TotalRetrans uint32  `json:"total_retrans"`
	Backoff      uint32  `json:"backoff"`
	RTOMs        float64 `json:"rto_ms"`
	SRTTUs       float64 `json:"srtt_us"`
	Cwnd         uint32  `json:"cwnd"`
	SendQ        uint32  `json:"send_q"`
	SndBuf       uint32  `json:"sndbuf"`
	SndWnd       uint32  `json:"snd_wnd"`
	MSS          uint32  `json:"mss"`
}

func (e *Event) String() string { return fmt.Sprintf("line %d: %s", e.Line, e.Raw) }

var alwaysPresent = []string{
	"time", "mono_ns", "kind", "pid", "tid", "comm", "owner_known", "cgroup", "cookie", "netns",
	"family", "proto", "src", "dst", "state", "bytes", "errno", "errno_name",
}

var tcpFields = []string{
	"since_send_ms", "since_recv_ms", "seq", "retransmits", "total_retrans", "backoff",
	"rto_ms", "srtt_us", "cwnd", "send_q", "sndbuf", "snd_wnd", "mss", "data_segs_in",
}

var kinds = map[string]bool{
	"send_error": true, "retransmit": true, "error_report": true,
	"receive_reset": true, "send_reset": true, "state_change": true, "drop": true,
}

var retransKinds = map[string]bool{"rto": true, "fast": true, "tlp": true, "syn": true, "synack": true}

var tcpStates = map[string]bool{
	"ESTABLISHED": true, "SYN_SENT": true, "SYN_RECV": true, "FIN_WAIT1": true, "FIN_WAIT2": true,
	"TIME_WAIT": true, "CLOSE": true, "CLOSE_WAIT": true, "LAST_ACK": true, "LISTEN": true,
	"CLOSING": true, "NEW_SYN_RECV": true, "BOUND_INACTIVE": true,
}

// ParseEvents parses a JSON Lines stream and checks every event line
// against the schema. It returns the events sorted by mono_ns, the lines of
// other record kinds (the schema lets records such as `diagnosis` share the
// stream; they are not events and are only checked to be JSON objects with
// a kind), and one message per schema violation.
func ParseEvents(out []byte) (evs []*Event, others []string, bad []string) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			bad = append(bad, fmt.Sprintf("line %d: empty line in a JSON Lines stream", n))
			continue
		}
		e, other, errs := parseEvent(line)
		if other {
			others = append(others, line)
		}
		for _, err := range errs {
			bad = append(bad, fmt.Sprintf("line %d: %s: %s", n, err, line))
		}
		if e != nil {
			e.Line, e.Raw = n, line
			evs = append(evs, e)
		}
	}
	if err := sc.Err(); err != nil {
		bad = append(bad, err.Error())
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Mono < evs[j].Mono })
	return evs, others, bad
}

// parseEvent parses one line. other is true for a record that is not an
// event. Unknown fields are allowed: the schema tells readers to ignore
// them.
func parseEvent(line string) (e *Event, other bool, errs []string) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &raw); err != nil {
		return nil, false, []string{"not a JSON object: " + err.Error()}
	}
	var kind string
	if err := json.Unmarshal(raw["kind"], &kind); err != nil || kind == "" {
		return nil, false, []string{"no kind"}
	}
	if !kinds[kind] {
		return nil, true, nil
	}
	for _, k := range alwaysPresent {
		if _, ok := raw[k]; !ok {
			errs = append(errs, "missing field "+k)
		}
	}
	e = new(Event)
	if err := json.Unmarshal([]byte(line), e); err != nil {
		return nil, false, append(errs, err.Error())
	}

	if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
		errs = append(errs, "time: "+err.Error())
	}
	if !e.OwnerKnown && e.PID != 0 {
		errs = append(errs, "pid set while owner_known is false")
	}
	for _, a := range []struct{ name, v string }{{"src", e.Src}, {"dst", e.Dst}} {
		if a.v == "" {
			continue
		}
		if _, err := netip.ParseAddrPort(a.v); err != nil {
			errs = append(errs, a.name+": "+err.Error())
		}
	}
	if e.Proto == "tcp" && e.State != "" && !tcpStates[e.State] && !isDecimal(e.State) {
		errs = append(errs, "unknown TCP state "+e.State)
	}
	switch {
	case e.Errno < 0:
		errs = append(errs, "negative errno")
	case e.Errno == 0:
		if e.ErrnoName != "" || e.ErrnoText != nil {
			errs = append(errs, "errno_name or errno_text without errno")
		}
	default:
		if want := unix.ErrnoName(syscall.Errno(e.Errno)); want != "" && e.ErrnoName != want {
			errs = append(errs, fmt.Sprintf("errno_name %q, want %q", e.ErrnoName, want))
		}
		if e.ErrnoText != nil && unix.ErrnoName(syscall.Errno(e.Errno)) != "" && *e.ErrnoText != syscall.Errno(e.Errno).Error() {
			errs = append(errs, fmt.Sprintf("errno_text %q, want %q", *e.ErrnoText, syscall.Errno(e.Errno).Error()))
		}
	}
	if e.Kind == "send_error" {
		if e.Layer == nil {
			errs = append(errs, "send_error without layer")
		} else if l := *e.Layer; l != "stack" && l != "syscall" && l != "stack+syscall" {
			errs = append(errs, "unknown layer "+l)
		} else if l != "stack" && (e.Syscall == nil || *e.Syscall == "") {
			errs = append(errs, "layer "+l+" without syscall")
		}
		if e.Errno == 0 {
			errs = append(errs, "send_error without errno")
		}
	} else if e.Layer != nil || e.Syscall != nil || e.StackErrno != nil {
		errs = append(errs, "layer/syscall/stack_errno on a "+e.Kind)
	}
	if e.RetransErrno != nil && (e.Kind != "retransmit" || *e.RetransErrno == 0) {
		errs = append(errs, "retrans_errno on a non-retransmit, or zero")
	}
	if (e.RetransErrno != nil) != (e.RetransError != nil) {
		errs = append(errs, "retrans_errno without retrans_error, or the reverse")
	}
	if e.Kind == "retransmit" {
		if e.RetransKind == nil || !retransKinds[*e.RetransKind] {
			errs = append(errs, "retransmit without a known retrans_kind")
		}
		// A retransmit that went out was counted; only a failure may
		// carry no segments.
		if e.Segs == 0 && e.RetransError == nil {
			errs = append(errs, "retransmit that went out without segs")
		}
	} else if e.RetransKind != nil {
		errs = append(errs, "retrans_kind on a "+e.Kind)
	}
	if e.Kind == "drop" {
		if e.DropReason == nil || *e.DropReason == "" {
			errs = append(errs, "drop without drop_reason")
		}
		if e.DropDir == nil || (*e.DropDir != "out" && *e.DropDir != "in") {
			errs = append(errs, "drop without drop_dir out or in")
		}
		if e.Segs == 0 {
			errs = append(errs, "drop without segs")
		}
	} else if e.DropReason != nil || e.DropLocation != nil || e.DropDev != nil || e.DropDir != nil {
		errs = append(errs, "drop_* fields on a "+e.Kind)
	}
	if e.Kind == "state_change" && e.OldState == nil {
		errs = append(errs, "state_change without old_state")
	}
	if (e.TCP != nil) != (e.Proto == "tcp") {
		errs = append(errs, "tcp object present iff proto is tcp")
	}
	if e.TCP != nil {
		var tcp map[string]json.RawMessage
		if err := json.Unmarshal(raw["tcp"], &tcp); err == nil {
			for _, k := range tcpFields {
				if _, ok := tcp[k]; !ok {
					errs = append(errs, "tcp object lacks "+k)
				}
			}
		}
		if e.TCP.SinceSendMs < -1 || e.TCP.SinceRecvMs < -1 {
			errs = append(errs, "since_*_ms below -1")
		}
	}
	return e, false, errs
}

// isDecimal reports whether s is the decimal form the schema uses for a
// value sendtrace has no name for.
func isDecimal(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}
