package loader

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelHZ returns CONFIG_HZ, which converts the jiffies TCP keeps its
// timestamps in. It reads the kernel config where one is published and
// otherwise assumes 250, Debian's and most distributions' choice; the
// second result says whether the value was read rather than assumed.
func KernelHZ() (int, bool) {
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		if gz, err := gzip.NewReader(f); err == nil {
			if hz, ok := configHZ(gz); ok {
				return hz, true
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		if f, err := os.Open("/boot/config-" + unix.ByteSliceToString(u.Release[:])); err == nil {
			defer f.Close()
			if hz, ok := configHZ(f); ok {
				return hz, true
			}
		}
	}
	return 250, false
}

func configHZ(r io.Reader) (int, bool) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CONFIG_HZ="); ok {
			hz, err := strconv.Atoi(v)
			return hz, err == nil && hz > 0
		}
	}
	return 0, false
}
