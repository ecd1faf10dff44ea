package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// pfKthread is PF_KTHREAD in a task's flags (/proc/PID/stat field 9).
const pfKthread = 0x00200000

// checkPID refuses a --pid that can never match: a kernel thread makes no
// sends of its own, and a thread id is not a thread group, which is what
// the filter compares. A pid with no /proc entry is left to the tracer,
// which says it is not running.
func checkPID(pid uint32) error {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// comm may hold spaces and parentheses: the fields start after the
	// last ')'.
	i := bytes.LastIndexByte(stat, ')')
	j := bytes.IndexByte(stat, '(')
	if i < 0 || j < 0 || j > i {
		return nil
	}
	comm := string(stat[j+1 : i])
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is the state (stat field 3), so field 9 is fields[6].
	if len(fields) > 6 {
		if flags, err := strconv.ParseUint(fields[6], 10, 64); err == nil && flags&pfKthread != 0 {
			return fmt.Errorf("invalid --pid %d: it is a kernel thread (%s), which makes no sends of its own; give the pid of a user process", pid, comm)
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			if tgid, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil && uint32(tgid) != pid {
				return fmt.Errorf("invalid --pid %d: it is a thread of process %d (%s); give --pid %d, which traces every thread of it", pid, tgid, comm, tgid)
			}
			break
		}
	}
	return nil
}
