// Package flight is serve's flight recorder: it keeps the last stretch of
// full events on local disk, in rotating segment files that are each a
// complete recording (internal/record's format: a header with the
// session's sysctls and hooks, the events, a footer with the kernel's
// totals over the segment's span), so that a failure nobody was
// recording can still be reported afterwards. Window reads the segments
// that cover a stretch of time back as one recording.
//
// A segment's footer totals are the kernel's exact totals at the
// segment's close minus those at its open (processes that exited in
// between included); each segment opens where the last closed, so the
// totals of consecutive segments add up to the session's. Events reach the recorder a little after the
// kernel counted them (up to serve's --event-batch plus the recorder's
// queue), so an event counted just before a segment closed can land in
// the next segment: totals are exact over any run of whole segments,
// and a single segment's differ from its events by at most those in
// flight at its two edges.
package flight

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of serve's --flight-max-size and --flight-max-age.
const (
	DefaultMaxSize = 256 << 20
	DefaultMaxAge  = time.Hour
)

// Config bounds a flight recorder.
type Config struct {
	// Dir holds the segments. It is created 0700 when missing; a
	// directory that other users can write is refused.
	Dir string
	// MaxSize bounds the bytes of every segment together, the open one
	// included; the oldest segment is deleted to stay under it.
	MaxSize int64
	// MaxAge: a segment last written longer ago than this is deleted.
	MaxAge time.Duration
	// MinFree is the free space (bytes) the file system must keep: below
	// it the recorder stops writing, counts what it drops, and resumes
	// when space returns. 0: DefaultMinFree.
	MinFree uint64
	// Log receives the recorder's one-line notices (disk short, space
	// back, a segment that could not be written); nil: nowhere.
	Log func(msg string)
	// freeBytes replaces statfs in tests.
	freeBytes func(dir string) (uint64, error)
}

// DefaultMinFree is the free space below which the recorder stops
// writing: what a node needs to go on working.
const DefaultMinFree = 512 << 20

// ErrNoData says that no segment covers any part of the window asked
// for: nothing was recorded then.
var ErrNoData = errors.New("no flight recording covers that window")

// BeforeHistoryError says that the window starts before the oldest
// segment: the history it asks for was rotated away or never recorded.
type BeforeHistoryError struct {
	Start time.Time // the oldest recorded time
}

func (e *BeforeHistoryError) Error() string {
	// To the nanosecond, so that the time said can be given back as
	// --since.
	return fmt.Sprintf("history starts at %s", e.Start.UTC().Format(time.RFC3339Nano))
}
