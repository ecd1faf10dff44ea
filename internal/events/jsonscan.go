package events

import (
	"encoding/json"
	"strconv"
	"unsafe"
)

// scanEvent fills j from one event line in the shape AppendJSON writes: a
// flat object of known keys, plain strings, integers, booleans and one
// "tcp" object. It does what encoding/json would do with such a line, at a
// fraction of the cost, because a recording holds millions of them. It
// returns false at the first thing outside that shape (an escape, a byte
// outside ASCII, an unknown or differently cased key, null, a number that
// does not fit its field, malformed JSON), and the caller then decodes the
// line with encoding/json, which also gives the error messages. It never
// accepts a line that encoding/json would read differently; a fuzz test
// holds it to that.
func scanEvent(line []byte, j *jsonEvent) bool {
	s := scanner{b: line}
	if !s.object(func(key []byte) bool { return s.eventField(key, j) }) {
		return false
	}
	s.space()
	return s.i == len(s.b)
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object scans {"key":value,...}, calling field for each key with the
// scanner at the value.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.consume('{') {
		return false
	}
	if s.consume('}') {
		return true
	}
	for {
		s.space()
		key, ok := s.str()
		if !ok || !s.consume(':') {
			return false
		}
		s.space()
		if !field(key) {
			return false
		}
		if s.consume(',') {
			continue
		}
		return s.consume('}')
	}
}

// str scans a string of printable ASCII without escapes.
func (s *scanner) str() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for k := start; k < len(s.b); k++ {
		c := s.b[k]
		switch {
		case c == '"':
			s.i = k + 1
			return s.b[start:k], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

func (s *scanner) strField(dst *string) bool {
	v, ok := s.str()
	if ok {
		*dst = string(v)
	}
	return ok
}

func (s *scanner) strPtr(dst **string) bool {
	var v string
	if !s.strField(&v) {
		return false
	}
	*dst = &v
	return true
}

// number scans a JSON number and returns its text.
func (s *scanner) number() ([]byte, bool) {
	start := s.i
	k := s.i
	if k < len(s.b) && s.b[k] == '-' {
		k++
	}
	digits := func() int {
		n := 0
		for k < len(s.b) && s.b[k] >= '0' && s.b[k] <= '9' {
			k++
			n++
		}
		return n
	}
	intStart := k
	n := digits()
	if n == 0 || (n > 1 && s.b[intStart] == '0') {
		return nil, false
	}
	if k < len(s.b) && s.b[k] == '.' {
		k++
		if digits() == 0 {
			return nil, false
		}
	}
	if k < len(s.b) && (s.b[k] == 'e' || s.b[k] == 'E') {
		k++
		if k < len(s.b) && (s.b[k] == '+' || s.b[k] == '-') {
			k++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	s.i = k
	return s.b[start:k], true
}

// unsigned and signed scan a number that must be an integer that fits the
// field, as encoding/json requires of an integer field.
func unsigned[T uint8 | uint32 | uint64](s *scanner, dst *T) bool {
	t, ok := s.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseUint(string(t), 10, int(unsafe.Sizeof(*dst))*8)
	*dst = T(v)
	return err == nil
}

func signed[T int32 | int64](s *scanner, dst *T) bool {
	t, ok := s.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(string(t), 10, int(unsafe.Sizeof(*dst))*8)
	*dst = T(v)
	return err == nil
}

func (s *scanner) num(dst *json.Number) bool {
	t, ok := s.number()
	if ok {
		*dst = json.Number(t)
	}
	return ok
}

func (s *scanner) boolean(dst *bool) bool {
	for _, lit := range [...]struct {
		text string
		v    bool
	}{{"true", true}, {"false", false}} {
		if len(s.b)-s.i >= len(lit.text) && string(s.b[s.i:s.i+len(lit.text)]) == lit.text {
			s.i += len(lit.text)
			*dst = lit.v
			return true
		}
	}
	return false
}

func (s *scanner) eventField(key []byte, j *jsonEvent) bool {
	switch string(key) {
	case "time":
		return s.strPtr(&j.Time)
	case "mono_ns":
		return unsigned(s, &j.Mono)
	case "kind":
		return s.strPtr(&j.Kind)
	case "pid":
		return unsigned(s, &j.PID)
	case "tid":
		return unsigned(s, &j.TID)
	case "comm":
		return s.strField(&j.Comm)
	case "owner_known":
		return s.boolean(&j.OwnerKnown)
	case "owner_via":
		return s.strField(&j.OwnerVia)
	case "cgroup":
		return unsigned(s, &j.Cgroup)
	case "cookie":
		return unsigned(s, &j.Cookie)
	case "netns":
		return unsigned(s, &j.Netns)
	case "workload":
		return s.strField(&j.Workload)
	case "workload_info":
		if j.WorkloadInfo == nil {
			j.WorkloadInfo = &jsonWorkload{}
		}
		w := j.WorkloadInfo
		return s.object(func(key []byte) bool { return s.workloadField(key, w) })
	case "family":
		return s.strField(&j.Family)
	case "proto":
		return s.strField(&j.Proto)
	case "src":
		return s.strField(&j.Src)
	case "dst":
		return s.strField(&j.Dst)
	case "state":
		return s.strField(&j.State)
	case "bytes":
		return unsigned(s, &j.Bytes)
	case "errno":
		return signed(s, &j.Errno)
	case "errno_name":
		return s.strField(&j.ErrnoName)
	case "errno_text":
		// Written for people; the reader derives it from the errno.
		var ignored string
		return s.strField(&ignored)
	case "layer":
		return s.strField(&j.Layer)
	case "syscall":
		return s.strField(&j.Syscall)
	case "stack_errno":
		return signed(s, &j.StackErrno)
	case "retrans_errno":
		return signed(s, &j.RetransErrno)
	case "retrans_error":
		return s.strField(&j.RetransError)
	case "segs":
		return unsigned(s, &j.Segs)
	case "retrans_kind":
		return s.strField(&j.RetransKind)
	case "drop_reason":
		return s.strField(&j.DropReason)
	case "drop_location":
		return s.strField(&j.DropLocation)
	case "drop_dev":
		return s.strField(&j.DropDev)
	case "drop_dir":
		return s.strField(&j.DropDir)
	case "old_state":
		return s.strField(&j.OldState)
	case "reset_reason":
		return unsigned(s, &j.ResetReason)
	case "tcp":
		// encoding/json decodes a repeated object into the same value.
		if j.TCP == nil {
			j.TCP = &jsonTCP{}
		}
		t := j.TCP
		return s.object(func(key []byte) bool { return s.tcpField(key, t) })
	}
	return false
}

func (s *scanner) tcpField(key []byte, t *jsonTCP) bool {
	switch string(key) {
	case "since_send_ms":
		return s.num(&t.SinceSendMs)
	case "since_recv_ms":
		return s.num(&t.SinceRecvMs)
	case "seq":
		return unsigned(s, &t.Seq)
	case "retransmits":
		return unsigned(s, &t.Retransmits)
	case "total_retrans":
		return unsigned(s, &t.TotalRetrans)
	case "backoff":
		return unsigned(s, &t.Backoff)
	case "rto_ms":
		return s.num(&t.RTOMs)
	case "srtt_us":
		return s.num(&t.SRTTUs)
	case "cwnd":
		return unsigned(s, &t.Cwnd)
	case "send_q":
		return unsigned(s, &t.SendQ)
	case "sndbuf":
		return unsigned(s, &t.SndBuf)
	case "snd_wnd":
		return unsigned(s, &t.SndWnd)
	case "mss":
		return unsigned(s, &t.MSS)
	case "data_segs_in":
		t.DataSegsIn = new(int64)
		return signed(s, t.DataSegsIn)
	case "snd_una":
		return unsigned(s, &t.SndUna)
	case "rcv_nxt":
		return unsigned(s, &t.RcvNxt)
	case "snd_isn":
		t.SndISN = new(uint32)
		return unsigned(s, t.SndISN)
	case "rcv_isn":
		t.RcvISN = new(uint32)
		return unsigned(s, t.RcvISN)
	}
	return false
}
