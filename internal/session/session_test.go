package session

import (
	"encoding/json"
	"net/netip"
	"testing"
)

// Recordings store filters as people write them, and old recordings
// must still read.
func TestFiltersJSON(t *testing.T) {
	f := Filters{PIDs: []uint32{7}, Dsts: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}, Errnos: []int32{70, 110}}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pids":[7],"dsts":["198.18.0.0/15"],"errnos":["ECOMM","ETIMEDOUT"]}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	var back Filters
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.String() != "pid=7 dst=198.18.0.0/15 errno=ECOMM errno=ETIMEDOUT" {
		t.Errorf("round trip: %q", back.String())
	}
	if err := json.Unmarshal([]byte(`{"dsts":["nope"]}`), &back); err == nil {
		t.Error("a bad prefix was accepted")
	}
}

func TestHookStatus(t *testing.T) {
	for _, c := range []struct {
		h    Hook
		want string
	}{
		{Hook{Layer: "x", Hook: "tp_btf/a", Active: true}, "tp_btf/a"},
		{Hook{Layer: "x", Off: true}, "off"},
		{Hook{Layer: "x"}, "degraded"},
	} {
		if got := c.h.Shown(); got != c.want {
			t.Errorf("%+v shown as %q, want %q", c.h, got, c.want)
		}
	}
	p := Plan{{Layer: "a", Hook: "h", Active: true, Tried: []string{"x: refused"}}}
	if r := p.ForRecording(); r[0].Tried != nil || p[0].Tried == nil {
		t.Error("ForRecording must drop Tried from a copy")
	}
}
