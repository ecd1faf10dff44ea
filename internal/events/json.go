package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The encoder runs once per event on the hot path of `-o json` and of
// recordings, so it appends to a caller-owned buffer and never allocates;
// the decoder reads recordings back and can afford encoding/json.

// AppendJSON appends e as one JSON object (docs/json-schema.md) to dst,
// without a trailing newline.
func AppendJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"time":"`...)
	dst = appendTimeUTC(dst, e.Time)
	dst = append(dst, `","mono_ns":`...)
	dst = strconv.AppendUint(dst, e.Mono, 10)
	dst = append(dst, `,"kind":"`...)
	dst = append(dst, e.Kind.String()...)
	dst = append(dst, `","pid":`...)
	dst = strconv.AppendUint(dst, uint64(e.PID), 10)
	dst = append(dst, `,"tid":`...)
	dst = strconv.AppendUint(dst, uint64(e.TID), 10)
	dst = append(dst, `,"comm":`...)
	dst = AppendJSONString(dst, e.Comm)
	dst = append(dst, `,"owner_known":`...)
	dst = strconv.AppendBool(dst, e.OwnerKnown)
	if e.OwnerVia != "" {
		dst = append(dst, `,"owner_via":`...)
		dst = AppendJSONString(dst, e.OwnerVia)
	}
	dst = append(dst, `,"cgroup":`...)
	dst = strconv.AppendUint(dst, e.Cgroup, 10)
	dst = appendWorkloadJSON(dst, e.Workload)
	dst = append(dst, `,"cookie":`...)
	dst = strconv.AppendUint(dst, e.Cookie, 10)
	dst = append(dst, `,"netns":`...)
	dst = strconv.AppendUint(dst, uint64(e.Netns), 10)

	dst = append(dst, `,"family":"`...)
	dst = append(dst, FamilyName(e.Family)...)
	dst = append(dst, `","proto":"`...)
	dst = append(dst, ProtoName(e.Protocol)...)
	dst = append(dst, `","src":"`...)
	dst = appendAddrPort(dst, e.Src)
	dst = append(dst, `","dst":"`...)
	dst = appendAddrPort(dst, e.Dst)
	dst = append(dst, `","state":"`...)
	dst = appendState(dst, e.State)
	dst = append(dst, `","bytes":`...)
	dst = strconv.AppendUint(dst, uint64(e.Bytes), 10)
	dst = append(dst, `,"errno":`...)
	dst = strconv.AppendInt(dst, int64(e.Errno), 10)
	dst = append(dst, `,"errno_name":"`...)
	dst = append(dst, ErrnoName(e.Errno)...)
	dst = append(dst, '"')

	if e.Errno != 0 {
		dst = append(dst, `,"errno_text":`...)
		dst = AppendJSONString(dst, ErrnoText(e.Errno))
	}
	if e.Layer != LayerNone {
		dst = append(dst, `,"layer":"`...)
		dst = append(dst, e.Layer.String()...)
		dst = append(dst, '"')
	}
	if e.Syscall != "" {
		dst = append(dst, `,"syscall":`...)
		dst = AppendJSONString(dst, e.Syscall)
	}
	if e.StackErrno != 0 {
		dst = append(dst, `,"stack_errno":`...)
		dst = strconv.AppendInt(dst, int64(e.StackErrno), 10)
	}
	if e.Segs != 0 {
		dst = append(dst, `,"segs":`...)
		dst = strconv.AppendUint(dst, uint64(e.Segs), 10)
	}
	if e.RetransKind != RetransNone {
		dst = append(dst, `,"retrans_kind":`...)
		dst = AppendJSONString(dst, e.RetransKind.String())
	}
	if e.RetransErr != 0 {
		dst = append(dst, `,"retrans_errno":`...)
		dst = strconv.AppendInt(dst, int64(RetransErrno(e.RetransErr)), 10)
		dst = append(dst, `,"retrans_error":`...)
		dst = AppendJSONString(dst, RetransErrName(e.RetransErr))
	}
	if e.DropReason != "" {
		dst = append(dst, `,"drop_reason":`...)
		dst = AppendJSONString(dst, e.DropReason)
	}
	if e.DropLocation != "" {
		dst = append(dst, `,"drop_location":`...)
		dst = AppendJSONString(dst, e.DropLocation)
	}
	if e.DropDev != "" {
		dst = append(dst, `,"drop_dev":`...)
		dst = AppendJSONString(dst, e.DropDev)
	}
	if e.DropDir != DropNone {
		dst = append(dst, `,"drop_dir":`...)
		dst = AppendJSONString(dst, e.DropDir.String())
	}
	if e.Kind == KindStateChange || e.OldState != 0 {
		dst = append(dst, `,"old_state":"`...)
		dst = appendState(dst, e.OldState)
		dst = append(dst, '"')
	}
	if e.ResetReason != 0 {
		dst = append(dst, `,"reset_reason":`...)
		dst = strconv.AppendUint(dst, uint64(e.ResetReason), 10)
	}

	if e.Protocol == ProtoTCP {
		dst = append(dst, `,"tcp":{"since_send_ms":`...)
		dst = appendSince(dst, e.SinceSend)
		dst = append(dst, `,"since_recv_ms":`...)
		dst = appendSince(dst, e.SinceRecv)
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, uint64(e.Seq), 10)
		dst = append(dst, `,"retransmits":`...)
		dst = strconv.AppendUint(dst, uint64(e.Retransmits), 10)
		dst = append(dst, `,"total_retrans":`...)
		dst = strconv.AppendUint(dst, uint64(e.TotalRetrans), 10)
		dst = append(dst, `,"backoff":`...)
		dst = strconv.AppendUint(dst, uint64(e.Backoff), 10)
		dst = append(dst, `,"rto_ms":`...)
		dst = appendDecimal(dst, int64(e.RTO), int64(time.Millisecond))
		dst = append(dst, `,"srtt_us":`...)
		dst = appendDecimal(dst, int64(e.SRTT), int64(time.Microsecond))
		dst = append(dst, `,"cwnd":`...)
		dst = strconv.AppendUint(dst, uint64(e.Cwnd), 10)
		dst = append(dst, `,"send_q":`...)
		dst = strconv.AppendUint(dst, uint64(e.SendQ), 10)
		dst = append(dst, `,"sndbuf":`...)
		dst = strconv.AppendUint(dst, uint64(e.SndBuf), 10)
		dst = append(dst, `,"snd_wnd":`...)
		dst = strconv.AppendUint(dst, uint64(e.SndWnd), 10)
		dst = append(dst, `,"mss":`...)
		dst = strconv.AppendUint(dst, uint64(e.MSS), 10)
		dst = append(dst, `,"data_segs_in":`...)
		dst = strconv.AppendInt(dst, max(e.DataSegsIn, -1), 10)
		dst = append(dst, `,"snd_una":`...)
		dst = strconv.AppendUint(dst, uint64(e.SndUna), 10)
		dst = append(dst, `,"rcv_nxt":`...)
		dst = strconv.AppendUint(dst, uint64(e.RcvNxt), 10)
		if e.HasISN {
			dst = append(dst, `,"snd_isn":`...)
			dst = strconv.AppendUint(dst, uint64(e.SndISN), 10)
			dst = append(dst, `,"rcv_isn":`...)
			dst = strconv.AppendUint(dst, uint64(e.RcvISN), 10)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func appendState(dst []byte, s uint8) []byte {
	if int(s) < len(stateNames) {
		return append(dst, stateNames[s]...)
	}
	return strconv.AppendUint(dst, uint64(s), 10)
}

func appendAddrPort(dst []byte, a netip.AddrPort) []byte {
	if !a.IsValid() {
		return dst
	}
	// Zones are plain interface names, but escaping keeps the output valid
	// JSON whatever they hold; the common case appends in place.
	if a.Addr().Zone() == "" {
		return a.AppendTo(dst)
	}
	start := len(dst)
	dst = a.AppendTo(dst)
	for _, c := range dst[start:] {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q := AppendJSONString(nil, string(dst[start:]))
			return append(dst[:start], q[1:len(q)-1]...)
		}
	}
	return dst
}

// appendSince writes the schema's -1 for any negative (unknown) duration.
func appendSince(dst []byte, d time.Duration) []byte {
	if d < 0 {
		return append(dst, "-1"...)
	}
	return appendDecimal(dst, int64(d), int64(time.Millisecond))
}

// appendDecimal writes v/unit as an exact decimal ("1.5", "200"), so that
// durations keep their nanoseconds without float rounding.
func appendDecimal(dst []byte, v, unit int64) []byte {
	if v < 0 {
		dst = append(dst, '-')
		if v == -v { // math.MinInt64
			return append(dst, "9223372036854.775808"...)
		}
		v = -v
	}
	dst = strconv.AppendInt(dst, v/unit, 10)
	frac := v % unit
	if frac == 0 {
		return dst
	}
	dst = append(dst, '.')
	for div := unit / 10; div > 0 && frac > 0; div /= 10 {
		dst = append(dst, byte('0'+frac/div))
		frac %= div
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a quoted JSON string. Task names are set by
// the process itself (prctl PR_SET_NAME) and may hold any bytes: control
// characters (C0, DEL and C1, which terminals act on) are escaped, and
// bytes that are not valid UTF-8 become U+FFFD, as JSON requires UTF-8.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r >= 0x80 && r <= 0x9f:
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but line terminators for JavaScript readers.
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// EscapeJSONControls escapes, in a JSON document that encoding/json wrote,
// DEL and the C1 controls (U+0080 to U+009F) as AppendJSONString does:
// encoding/json escapes only the C0 controls, and a terminal that shows
// the document acts on the others too. JSON holds neither outside its
// strings, so the document reads back the same. It returns b itself when
// there is nothing to escape.
func EscapeJSONControls(b []byte) []byte {
	var out []byte
	start := 0
	for i := 0; i < len(b); i++ {
		var r byte
		switch {
		case b[i] == 0x7f:
			r = 0x7f
		case b[i] == 0xc2 && i+1 < len(b) && b[i+1] >= 0x80 && b[i+1] <= 0x9f:
			// 0xc2 is a lead byte: it starts the rune, never ends one.
			r = b[i+1]
		default:
			continue
		}
		out = append(out, b[start:i]...)
		out = append(out, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		if r != 0x7f {
			i++
		}
		start = i + 1
	}
	if out == nil {
		return b
	}
	return append(out, b[start:]...)
}

// jsonEvent mirrors the schema for decoding.
type jsonEvent struct {
	Time         *string       `json:"time"`
	Mono         uint64        `json:"mono_ns"`
	Kind         *string       `json:"kind"`
	PID          uint32        `json:"pid"`
	TID          uint32        `json:"tid"`
	Comm         string        `json:"comm"`
	OwnerKnown   bool          `json:"owner_known"`
	OwnerVia     string        `json:"owner_via"`
	Cgroup       uint64        `json:"cgroup"`
	Workload     string        `json:"workload"`
	WorkloadInfo *jsonWorkload `json:"workload_info"`
	Cookie       uint64        `json:"cookie"`
	Netns        uint32        `json:"netns"`
	Family       string        `json:"family"`
	Proto        string        `json:"proto"`
	Src          string        `json:"src"`
	Dst          string        `json:"dst"`
	State        string        `json:"state"`
	Bytes        uint32        `json:"bytes"`
	Errno        int32         `json:"errno"`
	ErrnoName    string        `json:"errno_name"`
	Layer        string        `json:"layer"`
	Syscall      string        `json:"syscall"`
	StackErrno   int32         `json:"stack_errno"`
	RetransErrno int32         `json:"retrans_errno"`
	RetransError string        `json:"retrans_error"`
	Segs         uint32        `json:"segs"`
	RetransKind  string        `json:"retrans_kind"`
	DropReason   string        `json:"drop_reason"`
	DropLocation string        `json:"drop_location"`
	DropDev      string        `json:"drop_dev"`
	DropDir      string        `json:"drop_dir"`
	OldState     string        `json:"old_state"`
	ResetReason  uint32        `json:"reset_reason"`
	TCP          *jsonTCP      `json:"tcp"`
}

type jsonTCP struct {
	SinceSendMs  json.Number `json:"since_send_ms"`
	SinceRecvMs  json.Number `json:"since_recv_ms"`
	Seq          uint32      `json:"seq"`
	Retransmits  uint32      `json:"retransmits"`
	TotalRetrans uint32      `json:"total_retrans"`
	Backoff      uint8       `json:"backoff"`
	RTOMs        json.Number `json:"rto_ms"`
	SRTTUs       json.Number `json:"srtt_us"`
	Cwnd         uint32      `json:"cwnd"`
	SendQ        uint32      `json:"send_q"`
	SndBuf       uint32      `json:"sndbuf"`
	SndWnd       uint32      `json:"snd_wnd"`
	MSS          uint32      `json:"mss"`
	DataSegsIn   *int64      `json:"data_segs_in"`
	SndUna       uint32      `json:"snd_una"`
	RcvNxt       uint32      `json:"rcv_nxt"`
	SndISN       *uint32     `json:"snd_isn"`
	RcvISN       *uint32     `json:"rcv_isn"`
}

// ErrNotEvent is returned (wrapped) by ParseJSON for a well-formed record
// whose kind is not an Event kind, such as "diagnosis". Callers that mix
// record types can test for it with errors.Is, or call PeekKind first.
var ErrNotEvent = errors.New("not an event record")

// PeekKind returns the "kind" field of one JSON Lines record without
// decoding the rest, so a reader can dispatch records it does not own.
func PeekKind(line []byte) (string, error) {
	if k, ok := peekKindFast(line); ok {
		return k, nil
	}
	var r struct {
		Kind *string `json:"kind"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return "", fmt.Errorf("not a JSON record: %w", err)
	}
	if r.Kind == nil {
		return "", errors.New(`record has no "kind" field`)
	}
	return *r.Kind, nil
}

var kindKey = []byte(`"kind":"`)

// peekKindFast finds the kind of a record in the layout sendtrace writes
// ("kind" among the first top-level fields), without decoding the line:
// reading a recording back would otherwise decode every line twice. Any
// other layout, and every doubt, goes to the full decoder; the record is
// decoded in full afterwards either way, so nothing goes unchecked.
func peekKindFast(line []byte) (string, bool) {
	if len(line) < 2 || line[0] != '{' {
		return "", false
	}
	i := bytes.Index(line, kindKey)
	if i < 0 || bytes.IndexByte(line[1:i], '{') >= 0 || bytes.IndexByte(line[1:i], '[') >= 0 {
		return "", false
	}
	rest := line[i+len(kindKey):]
	j := bytes.IndexByte(rest, '"')
	if j <= 0 {
		return "", false
	}
	for _, c := range rest[:j] {
		if (c < 'a' || c > 'z') && c != '_' {
			return "", false
		}
	}
	// The key must be a key: preceded by the object's start or a comma.
	if prev := line[i-1]; prev != '{' && prev != ',' {
		return "", false
	}
	return string(rest[:j]), true
}

// ParseJSON decodes one line written by AppendJSON into e, replacing all
// of e. Fields the schema marks optional take their zero value when absent,
// except since_send/since_recv, which are unknown (-1) without a "tcp"
// object. Unknown fields are ignored so newer writers stay readable.
func ParseJSON(line []byte, e *Event) error {
	var j jsonEvent
	if !scanEvent(line, &j) {
		j = jsonEvent{}
		if err := json.Unmarshal(line, &j); err != nil {
			return fmt.Errorf("decoding event: %w", err)
		}
	}
	if j.Kind == nil {
		return errors.New(`decoding event: record has no "kind" field`)
	}
	kind, ok := ParseKind(*j.Kind)
	if !ok || kind == KindUnknown {
		return fmt.Errorf("decoding event: kind %q: %w (event kinds are %s)",
			*j.Kind, ErrNotEvent, strings.Join(kindNames[1:], ", "))
	}
	if j.Time == nil {
		return errors.New(`decoding event: record has no "time" field`)
	}
	t, err := time.Parse(time.RFC3339Nano, *j.Time)
	if err != nil {
		return fmt.Errorf("decoding event: time: %w", err)
	}

	out := Event{
		Time:         t,
		Mono:         j.Mono,
		Kind:         kind,
		PID:          j.PID,
		TID:          j.TID,
		Comm:         j.Comm,
		Cgroup:       j.Cgroup,
		Workload:     j.WorkloadInfo.workload(),
		OwnerKnown:   j.OwnerKnown,
		OwnerVia:     j.OwnerVia,
		Cookie:       j.Cookie,
		Netns:        j.Netns,
		Bytes:        j.Bytes,
		Errno:        j.Errno,
		Syscall:      j.Syscall,
		StackErrno:   j.StackErrno,
		ResetReason:  j.ResetReason,
		Segs:         j.Segs,
		DropReason:   j.DropReason,
		DropLocation: j.DropLocation,
		DropDev:      j.DropDev,
		SinceSend:    -1,
		SinceRecv:    -1,
	}
	if out.Family, err = ParseFamily(j.Family); err != nil {
		return fmt.Errorf("decoding event: %w", err)
	}
	if out.Protocol, err = ParseProto(j.Proto); err != nil {
		return fmt.Errorf("decoding event: %w", err)
	}
	if out.Src, err = parseAddrPort(j.Src); err != nil {
		return fmt.Errorf("decoding event: src: %w", err)
	}
	if out.Dst, err = parseAddrPort(j.Dst); err != nil {
		return fmt.Errorf("decoding event: dst: %w", err)
	}
	if out.State, err = ParseStateName(j.State); err != nil {
		return fmt.Errorf("decoding event: state: %w", err)
	}
	if out.OldState, err = ParseStateName(j.OldState); err != nil {
		return fmt.Errorf("decoding event: old_state: %w", err)
	}
	if out.Errno == 0 && j.ErrnoName != "" {
		// A hand-written record may give only the name.
		if out.Errno, err = ParseErrno(j.ErrnoName); err != nil {
			return fmt.Errorf("decoding event: errno_name: %w", err)
		}
	}
	if j.RetransErrno != 0 || j.RetransError != "" {
		out.RetransErr = parseRetransErr(j.RetransErrno, j.RetransError)
	}
	if j.RetransKind != "" {
		if out.RetransKind, ok = ParseRetransKind(j.RetransKind); !ok {
			return fmt.Errorf("decoding event: unknown retrans_kind %q (want rto, fast, tlp, syn or synack)", j.RetransKind)
		}
	}
	if j.DropDir != "" {
		if out.DropDir, ok = ParseDropDir(j.DropDir); !ok {
			return fmt.Errorf("decoding event: unknown drop_dir %q (want out or in)", j.DropDir)
		}
	}
	if j.Layer != "" {
		if out.Layer = ParseLayer(j.Layer); out.Layer == LayerNone {
			return fmt.Errorf("decoding event: unknown layer %q (want stack, syscall or stack+syscall)", j.Layer)
		}
	}
	if tc := j.TCP; tc != nil {
		out.Seq = tc.Seq
		out.Retransmits = tc.Retransmits
		out.TotalRetrans = tc.TotalRetrans
		out.Backoff = tc.Backoff
		out.Cwnd = tc.Cwnd
		out.SendQ = tc.SendQ
		out.SndBuf = tc.SndBuf
		out.SndWnd = tc.SndWnd
		out.MSS = tc.MSS
		out.SndUna = tc.SndUna
		out.RcvNxt = tc.RcvNxt
		if tc.SndISN != nil && tc.RcvISN != nil {
			out.SndISN, out.RcvISN, out.HasISN = *tc.SndISN, *tc.RcvISN, true
		}
		out.DataSegsIn = -1
		if tc.DataSegsIn != nil {
			out.DataSegsIn = max(*tc.DataSegsIn, -1)
		}
		for _, f := range [...]struct {
			name string
			num  json.Number
			unit time.Duration
			dst  *time.Duration
		}{
			{"since_send_ms", tc.SinceSendMs, time.Millisecond, &out.SinceSend},
			{"since_recv_ms", tc.SinceRecvMs, time.Millisecond, &out.SinceRecv},
			{"rto_ms", tc.RTOMs, time.Millisecond, &out.RTO},
			{"srtt_us", tc.SRTTUs, time.Microsecond, &out.SRTT},
		} {
			if f.num == "" {
				continue
			}
			v, err := parseDecimal(string(f.num), int64(f.unit))
			if err != nil {
				return fmt.Errorf("decoding event: tcp.%s: %w", f.name, err)
			}
			*f.dst = time.Duration(v)
		}
		if out.SinceSend < 0 {
			out.SinceSend = -1
		}
		if out.SinceRecv < 0 {
			out.SinceRecv = -1
		}
	}
	*e = out
	return nil
}

func parseAddrPort(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	return netip.ParseAddrPort(s)
}

// parseDecimal is the inverse of appendDecimal. Digits finer than a
// nanosecond are dropped; exponents, which AppendJSON never writes, go
// through float64.
func parseDecimal(s string, unit int64) (int64, error) {
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, err
		}
		return int64(f * float64(unit)), nil
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	ip, fp, _ := strings.Cut(s, ".")
	v, err := strconv.ParseInt(ip, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid number %q", s)
	}
	v *= unit
	for div := unit / 10; div > 0 && fp != ""; div /= 10 {
		c := fp[0]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid number %q", s)
		}
		v += int64(c-'0') * div
		fp = fp[1:]
	}
	if strings.Trim(fp, "0123456789") != "" {
		return 0, fmt.Errorf("invalid number %q", s)
	}
	if neg {
		v = -v
	}
	return v, nil
}
