package report

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/format"

	"github.com/sendtrace/sendtrace/internal/events"
)

// ErrNoConn is returned when a recording has no event for a cookie.
type ErrNoConn struct {
	Cookie uint64
	Path   string
	// Failed lists some cookies that do have failures, to pick from.
	Failed []uint64
}

func (e *ErrNoConn) Error() string {
	msg := fmt.Sprintf("no events for connection %d in %s", e.Cookie, e.Path)
	if len(e.Failed) > 0 {
		s := make([]string, len(e.Failed))
		for i, c := range e.Failed {
			s[i] = strconv.FormatUint(c, 10)
		}
		msg += "; connections that failed: " + strings.Join(s, ", ")
	} else {
		msg += "; run sendtrace report without --conn to list connections"
	}
	return msg
}

// CheckTimeline returns ErrNoConn when the timeline asked for is empty.
func CheckTimeline(r *Recording, cookie uint64) error {
	if len(r.Timeline) > 0 && r.Timeline[0].Cookie == cookie {
		return nil
	}
	e := &ErrNoConn{Cookie: cookie, Path: r.Path}
	for _, c := range r.sortedConns() {
		if c.Errno != 0 && len(e.Failed) < 10 {
			e.Failed = append(e.Failed, c.Cookie)
		}
	}
	return e
}

// WriteTimelineText writes one socket's events in order, with times
// relative to its first event, so that a retransmit backoff reads at a
// glance.
func WriteTimelineText(w io.Writer, r *Recording, cookie uint64) error {
	ew := &errWriter{w: w}
	if err := CheckTimeline(r, cookie); err != nil {
		return err
	}
	tl := r.Timeline
	first := tl[0]
	// The first events of a connection (the SYN_SENT state change) come
	// before the source port is bound.
	src := first.Src
	for i := range tl {
		if tl[i].Src.Port() != 0 {
			src = tl[i].Src
			break
		}
	}
	var owner *events.Event
	for i := range tl {
		if tl[i].OwnerKnown {
			owner = &tl[i]
			break
		}
	}
	who := "owner unknown"
	if owner != nil {
		who = format.Process(owner.Comm, owner.PID, true)
	}
	ew.printf("connection %d: %s %s -> %s, %s\n", cookie, events.ProtoName(first.Protocol), format.Addr(src), format.Addr(first.Dst), who)
	for _, d := range connDiagnoses(r, cookie) {
		ew.printf("diagnosis: %s\n", d.String())
	}
	ew.printf("first event at %s (+%s into the recording)\n",
		first.Time.Local().Format("2006-01-02 15:04:05.000000 MST"), fmtSec(relSec(first.Mono, r.StartMono)))
	if segs, n := timelineRetrans(tl); n > 0 {
		ew.printf("retransmitted %d segments (%s) in %d retransmits\n", segs.Total(), segs.Kinds(), n)
	}
	for i := range tl {
		e := &tl[i]
		ew.printf("%s %s\n", relText(time.Duration(e.Mono-first.Mono)), format.AppendEvent(nil, e))
	}
	return ew.err
}

// timelineRetrans sums a socket's retransmitted segments by kind, and
// counts its retransmit events.
func timelineRetrans(tl []events.Event) (segs events.RetransSegs, n int) {
	for i := range tl {
		if tl[i].Kind == events.KindRetransmit {
			segs.Observe(&tl[i])
			n++
		}
	}
	return segs, n
}

// relText prints an offset with millisecond precision, left-aligned at
// the sign so that the columns line up.
func relText(d time.Duration) string {
	return fmt.Sprintf("+%-8s", strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
}

// TimelineEntry is one event of a timeline in JSON: its offset from the
// connection's first event, and the event in the recording's schema.
type TimelineEntry struct {
	RelSec float64         `json:"rel_s"`
	Event  json.RawMessage `json:"event"`
}

// Timeline is the JSON form of --conn.
type Timeline struct {
	File      string               `json:"file"`
	Cookie    uint64               `json:"cookie"`
	Diagnoses []diagnose.Diagnosis `json:"diagnoses"`
	// RetransSegs are the segments the socket's retransmit events
	// carried, by kind in RetransKinds.
	RetransSegs   uint64            `json:"retrans_segs"`
	RetransKinds  map[string]uint64 `json:"retrans_segs_by_kind,omitempty"`
	RetransEvents int               `json:"retransmit_events"`
	Events        []TimelineEntry   `json:"events"`
}

// connDiagnoses returns the diagnoses of one socket, and the retry storms
// of its owner towards its destination.
func connDiagnoses(r *Recording, cookie uint64) []diagnose.Diagnosis {
	var owner events.Event
	for _, e := range r.Timeline {
		if e.OwnerKnown {
			owner = e
			break
		}
	}
	out := []diagnose.Diagnosis{}
	for _, d := range r.Diagnoses {
		if d.Cookie == cookie || (d.Cookie == 0 && owner.OwnerKnown && d.PID == owner.PID && d.Dst == owner.Dst) {
			out = append(out, d)
		}
	}
	return out
}

// BuildTimeline returns the JSON form of a connection's timeline.
func BuildTimeline(r *Recording, cookie uint64) (*Timeline, error) {
	if err := CheckTimeline(r, cookie); err != nil {
		return nil, err
	}
	t := &Timeline{File: r.Path, Cookie: cookie, Diagnoses: connDiagnoses(r, cookie)}
	segs, n := timelineRetrans(r.Timeline)
	t.RetransSegs, t.RetransKinds, t.RetransEvents = segs.Total(), kindsMap(&segs), n
	first := r.Timeline[0].Mono
	for i := range r.Timeline {
		e := &r.Timeline[i]
		line := events.AppendJSON(nil, e)
		line = line[:len(line)-len(trailingNewline(line))]
		t.Events = append(t.Events, TimelineEntry{RelSec: secs(time.Duration(e.Mono - first)), Event: slices.Clip(line)})
	}
	return t, nil
}

func trailingNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[n-1:]
	}
	return nil
}
