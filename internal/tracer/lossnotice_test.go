package tracer

import (
	"bytes"
	"testing"
	"time"
)

func TestLossNoticeOncePerSecond(t *testing.T) {
	var buf bytes.Buffer
	n := lossNotice{w: &buf}
	t0 := time.Unix(1000, 0)
	n.check(t0, 10) // losses before the first look are not this second's
	n.check(t0.Add(250*time.Millisecond), 500)
	n.check(t0.Add(time.Second), 900)
	n.check(t0.Add(1250*time.Millisecond), 1900)
	n.check(t0.Add(2*time.Second), 1900)
	n.check(t0.Add(3*time.Second), 1900)
	want := "sendtrace: 890 events lost in the last second: the reader is behind; counts stay exact\n" +
		"sendtrace: 1000 events lost in the last second: the reader is behind; counts stay exact\n"
	if buf.String() != want {
		t.Errorf("notices:\n%s\nwant:\n%s", buf.String(), want)
	}
}
