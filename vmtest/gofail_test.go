package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestFailedTests(t *testing.T) {
	out := strings.Split(`=== RUN   TestA
    a_test.go:1: fine
--- PASS: TestA (0.01s)
=== RUN   TestB
    b_test.go:9: no error report for the timed-out connection
--- FAIL: TestB (3.20s)
=== RUN   TestC
=== RUN   TestC/ipv6
    c_test.go:4: got 0 events
--- FAIL: TestC (1.00s)
    --- FAIL: TestC/ipv6 (0.50s)
=== RUN   TestD
--- PASS: TestD (0.00s)
FAIL`, "\n")
	if got, want := failedTests(out), []string{"TestB", "TestC", "TestC/ipv6"}; !reflect.DeepEqual(got, want) {
		t.Errorf("failedTests = %q, want %q", got, want)
	}
	got := strings.Join(failedTestLines(out, 100), "\n")
	for _, want := range []string{"no error report for the timed-out connection", "got 0 events", "--- FAIL: TestC/ipv6"} {
		if !strings.Contains(got, want) {
			t.Errorf("failedTestLines lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "fine") || strings.Contains(got, "TestD") {
		t.Errorf("failedTestLines shows passing tests:\n%s", got)
	}
}
