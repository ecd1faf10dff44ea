package htmlreport

import (
	"io"
	"strconv"
	"time"

	"github.com/sendtrace/sendtrace/internal/format"
	"github.com/sendtrace/sendtrace/internal/join"
	"github.com/sendtrace/sendtrace/internal/report"
)

// bothEndsPage is what the template renders for recordings made at
// different ends of the same connections.
type bothEndsPage struct {
	Title      string
	Generated  string
	Recordings []bothRecording
	Overlaps   []overlapView
	Offsets    []offsetView
	Joined     int
	Failed     int
	Conns      []joinedView // drawn
	Listed     []joinedRow  // joined, not drawn
	OneEnd     []endView
	OneEndWhy  string
	Sections   []recordingSection
	// ListMore and OneEndMore are what the tables leave out past
	// maxListed rows.
	ListMore, OneEndMore int
	Ambiguous            []ambiguousView
}

type bothRecording struct {
	Anchor               string
	Path, Host           string
	Netns                uint64
	Start, End, Duration string
	Footer               bool
	Handshakes           int
	OwnersLimited        string
}

// recordingSection is what a recording's own page says of it at the top:
// its header and its diagnoses, which link to the joined connections
// drawn.
type recordingSection struct {
	Anchor string
	Head   headView
	Groups []diagGroup
}

type overlapView struct {
	A, B                 string
	OK                   bool
	Duration, Start, End string
	// Corrected is how B's clock was corrected before the overlap was
	// taken; "" when it was not.
	Corrected string
	// Outside says how many handshakes matched outside the overlap, and
	// at what offset; "" when none did.
	Outside string
}

// offsetView is one pair's clock offset; Ms and WithinMs are the numbers
// -o json gives.
type offsetView struct {
	Text         string
	Ms, WithinMs string
}

type joinedView struct {
	Anchor      string
	Origin      string
	Evidence    string
	DataStopped string
	Reached     string // "yes", "no", or "" when neither end can tell
	Drops       bool   // either end's host dropped some of its packets
	Diagnosis   string
	Offset      offsetView
	Ends        [2]endView
	Chart       *timelineSVG
	Events      [2][]eventRow
	Omitted     [2]int
	// Own are each end's diagnoses from its recording alone.
	Own []diagView
}

// endView is one socket of a connection, as the page names it.
type endView struct {
	Role, Host, Proc, Workload string
	Recording                  string
	Cookie                     uint64
	Src, Dst, Established      string
	Diagnosis                  string
	Idle                       string // "at most …" when only an upper bound is known
	// DropsIn and DropsOut are what the end's own host dropped of its
	// socket's packets; Drops says so, "" when it dropped none.
	DropsIn, DropsOut int
	Drops             string
}

type joinedRow struct {
	Ends   [2]endView
	Failed bool
	Origin string
}

type ambiguousView struct {
	End        endView
	Candidates []endView
}

// WriteBothEnds writes the page of recordings joined at both ends: each
// failed connection with both of its sockets on one time axis, up to o.Conns
// of them, and the others listed; then each recording's header and
// diagnoses. recs are the same recordings as r's, in the same order.
func WriteBothEnds(w io.Writer, r *join.Result, recs []*report.Recording, o Options) error {
	return pageTemplate.ExecuteTemplate(w, "bothends", buildBothEnds(r, recs, o))
}

func buildBothEnds(r *join.Result, recs []*report.Recording, o Options) *bothEndsPage {
	if o.Conns <= 0 {
		o.Conns = DefaultConns
	}
	p := &bothEndsPage{Title: "sendtrace report: both ends", Generated: time.Now().UTC().Format(time.RFC3339), Joined: len(r.Joined)}
	for k, rec := range r.Recordings {
		p.Recordings = append(p.Recordings, bothRecording{Anchor: recAnchor(k, recs), Path: rec.Path, Host: rec.Host, Netns: rec.Netns,
			Start: join.Stamp(rec.Start), End: join.Stamp(rec.End), Duration: format.Duration(rec.End.Sub(rec.Start)),
			Footer: rec.Footer, Handshakes: len(rec.Ends), OwnersLimited: rec.OwnersLimited})
	}
	p.OneEndWhy = join.OneEndWhy(r)
	for _, ov := range r.Overlaps {
		v := overlapView{A: ov.A.Path, B: ov.B.Path, OK: ov.OK}
		if ov.OK {
			v.Duration, v.Start, v.End = format.Duration(ov.End.Sub(ov.Start)), join.Stamp(ov.Start), join.Stamp(ov.End)
		}
		v.Corrected, v.Outside = ov.CorrectedText(), ov.OutsideText()
		p.Overlaps = append(p.Overlaps, v)
	}
	for _, off := range r.Offsets {
		p.Offsets = append(p.Offsets, offsetOf(off))
	}
	for _, c := range r.Joined {
		if c.Failed {
			p.Failed++
		}
		if !c.Failed || len(p.Conns) == o.Conns {
			if len(p.Listed) == maxListed {
				p.ListMore++
				continue
			}
			p.Listed = append(p.Listed, joinedRow{Ends: [2]endView{endOf(c.Ends[0], -1), endOf(c.Ends[1], -1)}, Failed: c.Failed, Origin: c.ResetOrigin})
			continue
		}
		p.Conns = append(p.Conns, joinedOf(r, c))
	}
	for _, e := range r.OneEnd {
		if len(p.OneEnd) == maxListed {
			p.OneEndMore++
			continue
		}
		p.OneEnd = append(p.OneEnd, endOf(e, -1))
	}
	for k, rec := range recs {
		onPage := map[uint64]string{}
		for _, c := range p.Conns {
			for _, e := range c.Ends {
				if e.Recording == r.Recordings[k].Path {
					onPage[e.Cookie] = c.Anchor
				}
			}
		}
		p.Sections = append(p.Sections, recordingSection{Anchor: recAnchor(k, recs), Head: head(rec), Groups: groups(rec, onPage, recAnchor(k, recs)+"-")})
	}
	for _, a := range r.Ambiguous {
		v := ambiguousView{End: endOf(a.End, -1)}
		for _, c := range a.Candidates {
			v.Candidates = append(v.Candidates, endOf(c, -1))
		}
		p.Ambiguous = append(p.Ambiguous, v)
	}
	return p
}

// recAnchor is the id of recording k's section; "" when the page has
// none.
func recAnchor(k int, recs []*report.Recording) string {
	if k >= len(recs) {
		return ""
	}
	return "rec-" + strconv.Itoa(k)
}

func offsetOf(o join.Offset) offsetView {
	return offsetView{Text: o.Text(), Ms: msText(o.Estimate), WithinMs: msText(o.Within)}
}

// msText is a duration in milliseconds as -o json gives it.
func msText(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64)
}

func endOf(e *join.End, idle time.Duration) endView {
	f := e.First()
	v := endView{Role: e.Role(), Host: e.Rec.Host, Proc: format.Process(f.Comm, f.PID, f.OwnerKnown), Workload: f.Workload.String(),
		Recording: e.Rec.Path, Cookie: e.Cookie, Src: f.Src.String(), Dst: f.Dst.String(), Established: join.Stamp(e.Established)}
	if len(e.Diagnoses) > 0 {
		v.Diagnosis = e.Diagnoses[0].Rule
	}
	if idle >= 0 {
		v.Idle = format.Duration(idle)
	}
	return v
}

func joinedOf(r *join.Result, c *join.Conn) joinedView {
	v := joinedView{
		Anchor: "joined-" + strconv.FormatUint(c.Ends[0].Cookie, 10),
		Origin: c.ResetOrigin, Evidence: c.ResetEvidence, DataStopped: c.DataStopped, Diagnosis: c.Diagnosis,
	}
	if c.Reached != nil {
		v.Reached = map[bool]string{true: "yes", false: "no"}[*c.Reached]
	}
	for _, o := range r.Offsets {
		if (o.A == c.Ends[0].Rec && o.B == c.Ends[1].Rec) || (o.A == c.Ends[1].Rec && o.B == c.Ends[0].Rec) {
			v.Offset = offsetOf(o)
		}
	}
	for i, e := range c.Ends {
		v.Ends[i] = endOf(e, c.Idle[i])
		if c.Idle[i] >= 0 && c.IdleAtMost[i] {
			v.Ends[i].Idle = "at most " + v.Ends[i].Idle
		}
		if d := c.Drops[i]; d.In+d.Out > 0 {
			v.Ends[i].DropsIn, v.Ends[i].DropsOut, v.Ends[i].Drops = d.In, d.Out, d.Text()
			v.Drops = true
		}
	}
	d := drawBothEnds(c)
	v.Chart, v.Events, v.Omitted = d.Chart, d.Events, d.Omitted
	for i, e := range c.Ends {
		for k := range e.Diagnoses {
			v.Own = append(v.Own, diagOf(d.Origin[i], &e.Diagnoses[k], ""))
		}
	}
	return v
}
