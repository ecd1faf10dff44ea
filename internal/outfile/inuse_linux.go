package outfile

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// openBy returns a process other than this one that has the file st open
// (its pid and command name), or 0. It looks in /proc at every process
// whose descriptors this one may read: all of them as root.
func openBy(st os.FileInfo) (pid int, comm string) {
	want, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, ""
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, ""
	}
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			// Sockets, pipes and anonymous inodes are never the file.
			if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err != nil || !strings.HasPrefix(target, "/") {
				continue
			}
			var got syscall.Stat_t
			if syscall.Stat(filepath.Join(fdDir, fd.Name()), &got) == nil && got.Dev == want.Dev && got.Ino == want.Ino {
				b, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
				return pid, strings.TrimSpace(string(b))
			}
		}
	}
	return 0, ""
}
