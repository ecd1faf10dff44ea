package flight

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Segment names carry their start time, so that name order is age
// order and a window picks its segments without opening any.
const (
	segPrefix     = "flight-"
	segSuffix     = ".jsonl.zst"
	segTimeLayout = "20060102T150405.000000000Z"
)

// segment is one file of the flight directory.
type segment struct {
	path  string
	start time.Time
	// end is when it was last written: its close, or for the open (or
	// a crashed) segment its last flush.
	end  time.Time
	size int64
}

func segmentName(start time.Time) string {
	return segPrefix + start.UTC().Format(segTimeLayout) + segSuffix
}

func parseSegmentName(name string) (time.Time, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return time.Time{}, false
	}
	t, err := time.Parse(segTimeLayout, strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix))
	return t, err == nil
}

// listSegments returns the segments in dir, oldest first.
func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []segment
	for _, e := range ents {
		start, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // deleted by rotation meanwhile
		}
		out = append(out, segment{path: filepath.Join(dir, e.Name()), start: start, end: writtenUntil(start, info.ModTime()), size: info.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out, nil
}

// DirError says why a flight directory cannot be read, in one line
// that says what to give instead.
func dirError(dir string, err error) error {
	if os.IsNotExist(err) {
		return fmt.Errorf("flight directory %s does not exist: give the --flight-dir that serve writes", dir)
	}
	return fmt.Errorf("read flight directory %s: %w", dir, err)
}

// mtimeSlack covers the coarse clock of file times: the kernel stamps a
// write with the time of its last tick (up to 10 ms before the write at
// HZ=100), so a segment written within a tick can seem to end before it
// began, and a window from that instant would miss it. A window that
// takes a segment for a few ms too many reads its events by their own
// times anyway.
const mtimeSlack = 20 * time.Millisecond

// writtenUntil is when a segment that started at start and whose file
// time is mtime was last written, at the latest.
func writtenUntil(start, mtime time.Time) time.Time {
	end := mtime.Add(mtimeSlack)
	if end.Before(start) {
		return start
	}
	return end
}
