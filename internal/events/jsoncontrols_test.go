package events

import (
	"encoding/json"
	"testing"
)

// TestEscapeJSONControls: DEL and the C1 controls that encoding/json
// leaves raw come out escaped, and the document reads back the same.
func TestEscapeJSONControls(t *testing.T) {
	in := map[string]string{"host": "vm\x7f\u009b2J\u0085é\u00a0\u009f", "plain": "x"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got := EscapeJSONControls(b)
	const want = `{"host":"vm\u007f\u009b2J\u0085é` + "\u00a0" + `\u009f","plain":"x"}`
	if string(got) != want {
		t.Errorf("EscapeJSONControls(%s) = %s, want %s", b, got, want)
	}
	var back map[string]string
	if err := json.Unmarshal(got, &back); err != nil || back["host"] != in["host"] {
		t.Errorf("read back %q (%v), want %q", back["host"], err, in["host"])
	}
	plain := []byte(`{"a":"b"}`)
	if got := EscapeJSONControls(plain); &got[0] != &plain[0] {
		t.Error("a document with nothing to escape is copied")
	}
}
