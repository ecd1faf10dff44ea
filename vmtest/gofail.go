package main

import (
	"regexp"
	"strings"
)

// goTestFail matches go test's line for a failed test or subtest.
var goTestFail = regexp.MustCompile(`^\s*--- FAIL: (\S+)`)

// failedTests names the tests a command's go test -v output failed, in
// order, so the end of a long run says which test failed even when only
// its last lines are kept.
func failedTests(output []string) []string {
	var names []string
	for _, l := range output {
		if m := goTestFail.FindStringSubmatch(l); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// failedTestLines is the output of each failed top-level test, from its
// "=== RUN" line to its "--- FAIL" line (subtests included), at most max
// lines per test: the part of a long run's output that explains the
// failure, which a plain tail cuts off.
func failedTestLines(output []string, max int) []string {
	var out []string
	for _, name := range failedTests(output) {
		if strings.Contains(name, "/") {
			continue // shown within its parent
		}
		start := -1
		for i, l := range output {
			if strings.TrimSpace(l) == "=== RUN   "+name {
				start = i
			}
			if start >= 0 && goTestFail.MatchString(l) && strings.HasPrefix(strings.TrimSpace(l), "--- FAIL: "+name+" ") {
				end := i + 1
				for end < len(output) && strings.HasPrefix(strings.TrimLeft(output[end], " "), "--- ") && output[end] != strings.TrimLeft(output[end], " ") {
					end++ // its subtests' results follow the parent's
				}
				block := output[start:end]
				if len(block) > max {
					block = append(append([]string{}, block[:max/2]...), append([]string{"[...]"}, block[len(block)-max/2:]...)...)
				}
				out = append(out, block...)
				break
			}
		}
	}
	return out
}
