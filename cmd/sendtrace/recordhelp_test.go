package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/record"
)

// record --help and the README give the flush interval the writer uses.
func TestRecordFlushIntervalDocumented(t *testing.T) {
	want := fmt.Sprintf("every %d ms", record.FlushInterval.Milliseconds())
	if long := strings.Join(strings.Fields(newRecordCmd().Long), " "); !strings.Contains(long, want) {
		t.Errorf("record --help does not say %q:\n%s", want, long)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(strings.Fields(string(readme)), " "), "flushed "+want) {
		t.Errorf("README does not say the recording is flushed %s", want)
	}
}
