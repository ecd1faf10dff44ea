// Package procstate says what state a process is in, from /proc. It links
// nothing Linux-only, so the report-only build can carry its callers.
package procstate

import (
	"os"
	"strconv"
	"strings"
)

// Alive reports whether process pid exists and has not exited. A zombie,
// exited and waiting for its parent to reap it, is not alive: it sends
// nothing more, and its pid is about to be free.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the comm, which may hold spaces and parentheses:
	// "PID (COMM) S ...".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	switch b[i+2] {
	case 'Z', 'X', 'x':
		return false
	}
	return true
}
