package flight

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// historyFile holds the time from which the flight directory has every
// event the recorder kept: when the first serve began watching, moved
// forward each time rotation deletes a segment. A quiet stretch writes no
// segment, so the oldest segment's start alone would put the history's
// start at the first failure after it, and refuse a window the recorder
// watched and saw nothing in.
const historyFile = "history-start"

// historyStart is the start of the history in dir: the time the file
// holds, or, in a directory without it, the oldest segment's start.
func historyStart(dir string, segs []segment) time.Time {
	if b, err := os.ReadFile(filepath.Join(dir, historyFile)); err == nil {
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err == nil {
			if len(segs) > 0 && segs[0].start.Before(t) {
				return segs[0].start
			}
			return t
		}
	}
	if len(segs) > 0 {
		return segs[0].start
	}
	return time.Time{}
}

// setHistoryStart writes t as the history's start, replacing the file
// in one step (rename), so that a reader never sees half of it.
func setHistoryStart(dir string, t time.Time) error {
	tmp, err := os.CreateTemp(dir, "."+historyFile+"-*")
	if err != nil {
		return err
	}
	_, werr := tmp.WriteString(t.UTC().Format(time.RFC3339Nano) + "\n")
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), filepath.Join(dir, historyFile))
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}
