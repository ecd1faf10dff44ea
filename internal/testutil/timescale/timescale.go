// Package timescale stretches the time limits of sendtrace's tests and of
// the processes they start (the netlab actor) on machines slower than the
// one the limits were chosen on. A guest that qemu emulates (TCG) does the
// same work ten or more times slower than the host, more on a loaded host;
// a limit that is a generous hang guard on the host fires there while
// nothing is wrong. The kernel matrix's guests set VMTEST_TIME_SCALE
// (vmtest/README.md); elsewhere it is unset and limits are as written.
//
// It imports no testing code, so the actor binary can use it.
package timescale

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Env names the factor: a number of at least 1.
const Env = "VMTEST_TIME_SCALE"

// Factor is the factor $VMTEST_TIME_SCALE gives, 1 when it is unset. A
// value that is not a number of at least 1 panics: a test run with limits
// other than the ones asked for would mislead.
func Factor() float64 {
	v := os.Getenv(Env)
	if v == "" {
		return 1
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 1 {
		panic(fmt.Sprintf("%s=%q: want a number of at least 1 (how many times slower than the host this machine runs)", Env, v))
	}
	return f
}

// Scale returns d stretched by Factor.
func Scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * Factor())
}
