package record

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"
)

// FuzzReader checks that no input makes the reader panic or fail without
// saying where: every error must be a FormatError naming a line or an
// offset. The seed corpus in testdata/fuzz/FuzzReader holds real
// recordings, plain and compressed, whole and cut short.
func FuzzReader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte(`{"kind":"header","format":"sendtrace-recording","format_version":1}` + "\n" + `{"kind":"footer"}` + "\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rd, err := NewReader(bytes.NewReader(in))
		if err != nil {
			checkFormatError(t, err)
			return
		}
		if rd.Header == nil {
			t.Fatal("no error and no header")
		}
		var e events.Event
		for n := 0; ; n++ {
			ok, err := rd.Next(&e)
			if err != nil {
				checkFormatError(t, err)
				return
			}
			if !ok {
				break
			}
			if n > len(in) {
				t.Fatalf("more events (%d) than input bytes (%d)", n, len(in))
			}
		}
	})
}

func checkFormatError(t *testing.T, err error) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %q (%T) does not name a line or offset", err, err)
	}
}
