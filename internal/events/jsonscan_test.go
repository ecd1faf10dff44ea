package events

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// scanAgrees checks the fast scanner against encoding/json on one line:
// whenever the scanner accepts the line, encoding/json must accept it too
// and decode exactly the same values.
func scanAgrees(t *testing.T, line []byte) (accepted bool) {
	t.Helper()
	var fast jsonEvent
	if !scanEvent(line, &fast) {
		return false
	}
	var slow jsonEvent
	if err := json.Unmarshal(line, &slow); err != nil {
		t.Fatalf("the scanner accepted %q, encoding/json refuses it: %v", line, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q\nscanner:       %+v (tcp %+v)\nencoding/json: %+v (tcp %+v)", line, fast, fast.TCP, slow, slow.TCP)
	}
	return true
}

// TestScanTakesWhatAppendJSONWrites: every line sendtrace writes must take
// the fast path (otherwise it only costs time), and agree with
// encoding/json.
func TestScanTakesWhatAppendJSONWrites(t *testing.T) {
	var lines [][]byte
	e := fullTCP()
	lines = append(lines, AppendJSON(nil, &e))
	for _, k := range []Kind{KindRetransmit, KindErrorReport, KindStateChange, KindReceiveReset, KindSendReset, KindDrop} {
		e := fullTCP()
		e.Kind = k
		e.Layer = LayerNone
		e.Syscall = ""
		e.SinceSend, e.SinceRecv = -1, -1
		lines = append(lines, AppendJSON(nil, &e))
	}
	minimal := Event{Time: time.Unix(0, 1).UTC(), Kind: KindSendError, SinceSend: -1, SinceRecv: -1}
	lines = append(lines, AppendJSON(nil, &minimal))
	for _, line := range lines {
		if !scanAgrees(t, line) {
			t.Errorf("the fast path refused a line AppendJSON wrote: %s", line)
		}
	}
}

// TestScanRefusesWhatItCannotMatch lists inputs that encoding/json reads
// in ways the scanner does not imitate; each must go to encoding/json.
func TestScanRefusesWhatItCannotMatch(t *testing.T) {
	for _, line := range []string{
		`{"kind":"send_error","PID":3}`,                        // keys match case-insensitively there
		`{"kind":"send_error","comm":"a\"b"}`,                  // escapes
		`{"kind":"send_error","comm":"caf` + "\xc3\xa9" + `"}`, // non-ASCII
		`{"kind":"send_error","pid":null}`,                     // null
		`{"kind":"send_error","extra":{"x":1}}`,                // unknown fields
		`{"kind":"send_error","pid":1.0}`,                      // not an integer
		`{"kind":"send_error","pid":4294967296}`,               // overflows uint32
		`{"kind":"send_error","tcp":{"backoff":256}}`,          // overflows uint8
		`{"kind":"send_error","pid":01}`,                       // not JSON
		`{"kind":"send_error","tcp":{"rto_ms":"1"}}`,           // a string into json.Number
		`{"kind":"send_error"} x`,                              // trailing garbage
		`{"kind":"send_error",}`,
		`{"kind":"send_error"`,
		`{"kind":"send_error","owner_known":tru}`,
	} {
		var j jsonEvent
		if scanEvent([]byte(line), &j) {
			t.Errorf("the scanner accepted %s", line)
		}
	}
	for _, line := range []string{
		` { "kind" : "send_error" , "pid" : 7 , "tcp" : { "rto_ms" : 1.5e3 } } `,
		`{"kind":"send_error","tcp":{"seq":1},"tcp":{"mss":2}}`,
		`{"kind":"a","kind":"b","errno":-0,"errno_text":"x"}`,
		`{}`,
	} {
		if !scanAgrees(t, []byte(line)) {
			t.Errorf("the scanner refused %s", line)
		}
	}
}

// FuzzScanAgrees: on any input, what the scanner accepts encoding/json
// decodes identically.
func FuzzScanAgrees(f *testing.F) {
	e := fullTCP()
	f.Add(AppendJSON(nil, &e))
	f.Add([]byte(`{"kind":"send_error","pid":1,"tcp":{"rto_ms":-0.5E+2}}`))
	f.Add([]byte(`{"time":"x","kind":"y","owner_known":false,"cookie":18446744073709551615}`))
	f.Add([]byte(`{"kind":"drop","segs":3,"drop_reason":"QDISC_DROP","drop_dir":"out","retrans_error":"NET_XMIT_DROP"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		scanAgrees(t, line)
	})
}
