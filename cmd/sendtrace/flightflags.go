package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sendtrace/sendtrace/internal/flight"
)

// flightFlags are serve's flight recorder flags.
type flightFlags struct {
	dir     string
	maxSize string
	maxAge  time.Duration
	minFree string

	size, free int64
}

func (f *flightFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.dir, "flight-dir", "", "keep the last stretch of events in rotating recordings in this directory (created 0700), for report --flight and record --from-flight; off when empty")
	fl.StringVar(&f.maxSize, "flight-max-size", "256MiB", "most bytes the flight directory's segments take together; the oldest segment is deleted first")
	fl.DurationVar(&f.maxAge, "flight-max-age", flight.DefaultMaxAge, "delete flight segments last written longer ago than this")
	fl.StringVar(&f.minFree, "flight-min-free", "512MiB", "stop the flight recorder while its file system has less free space than this, and resume when it has this plus a segment")
}

func (f *flightFlags) check() error {
	var err error
	if f.size, err = parseBytes("--flight-max-size", f.maxSize); err != nil {
		return err
	}
	if f.free, err = parseBytes("--flight-min-free", f.minFree); err != nil {
		return err
	}
	if f.maxAge < time.Minute {
		return fmt.Errorf("invalid --flight-max-age %s: give a minute or more, such as 1h", f.maxAge)
	}
	return nil
}

// parseBytes reads a size in bytes, or with a KiB, MiB or GiB suffix.
func parseBytes(flag, s string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid %s %q: give a size in bytes, or with KiB, MiB or GiB, such as 256MiB", flag, s)
	}
	return n * mult, nil
}
