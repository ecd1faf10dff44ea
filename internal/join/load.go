// Package join puts together the two ends of TCP connections recorded on
// different hosts (or network namespaces) over the same period. Addresses
// and ports may all differ between the ends when a load balancer rewrites
// them, so ends are joined by what survives NAT: the initial sequence
// numbers, which one end sends and the other receives.
package join

import (
	"fmt"
	"time"

	"github.com/sendtrace/sendtrace/internal/diagnose"
	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Recording is what the join keeps of one file: its span and the TCP
// sockets whose handshake it saw.
type Recording struct {
	Path   string
	Host   string
	Netns  uint64
	Start  time.Time // this host's clock
	End    time.Time
	Footer bool // false: the recorder did not stop cleanly; End is the last event's time
	Ends   []*End
	// OwnersLimited says why sockets may be missing from this recording
	// under its process filters (its owner-seed layer was degraded), so
	// that a handshake seen at one end only is not blamed on the other
	// end not being recorded; "" when nothing limited them.
	OwnersLimited string
	// startMono is the recorder's CLOCK_MONOTONIC at its start: with the
	// host and the start time, it tells one recording given twice.
	startMono uint64
}

// End is one socket as one recording saw it, from its handshake on.
type End struct {
	Rec            *Recording
	Cookie         uint64
	SndISN, RcvISN uint32
	// Client is set when this end connected (SYN_SENT), clear when it
	// accepted (SYN_RECV).
	Client      bool
	SynSent     time.Time // zero when not seen
	Established time.Time
	// Handshake are the socket's events before ESTABLISHED, from its
	// SYN_SENT or SYN_RECV: the SYNs it retransmitted; empty when not seen.
	Handshake []events.Event
	Events    []events.Event // ESTABLISHED first, in the order recorded
	Diagnoses []diagnose.Diagnosis
}

// First is the handshake's event, which names the process and addresses.
func (e *End) First() *events.Event { return &e.Events[0] }

// Last is the socket's last event in its recording.
func (e *End) Last() *events.Event { return &e.Events[len(e.Events)-1] }

// Role is "client" for the end that connected, "server" for the one that
// accepted.
func (e *End) Role() string {
	if e.Client {
		return "client"
	}
	return "server"
}

// Replayer replays the recording at path into ends, the sink that
// gathers its handshaken sockets and their diagnoses, and says whether
// the file had a footer. It may feed other sinks in the same pass (the
// both-ends page's reports), so that each file is read and diagnosed
// once.
type Replayer func(path string, ends pipeline.Sink) (footer bool, err error)

// Replay is the Replayer of a join on its own: each recording through a
// diagnosis engine with cfg's thresholds, so that each end gets the
// diagnoses a report would give it.
func Replay(cfg diagnose.Config) Replayer {
	return func(path string, ends pipeline.Sink) (bool, error) {
		rd, err := record.Replay(path, pipeline.New(diagnose.New(cfg), ends))
		if err != nil {
			return false, err
		}
		return rd.Footer != nil, nil
	}
}

// Load reads each recording once, through replay, and keeps its
// handshaken sockets.
func Load(paths []string, replay Replayer) ([]*Recording, error) {
	recs := make([]*Recording, 0, len(paths))
	for _, p := range paths {
		c := &collector{rec: &Recording{Path: p}, ends: map[uint64]*End{}, syn: map[uint64][]events.Event{}}
		footer, err := replay(p, c)
		if err != nil {
			return nil, err
		}
		c.rec.Footer = footer
		for _, r := range recs {
			if r.Host == c.rec.Host && r.startMono == c.rec.startMono && r.Start.Equal(c.rec.Start) {
				return nil, fmt.Errorf("%s and %s are the same recording: give one recording per end, made at the same time", r.Path, p)
			}
		}
		recs = append(recs, c.rec)
	}
	return recs, nil
}

// collector is the sink that gathers one recording's ends.
type collector struct {
	rec  *Recording
	desc *session.Description
	ends map[uint64]*End
	syn  map[uint64][]events.Event // from SYN_SENT or SYN_RECV on, until ESTABLISHED or CLOSE
	last uint64
}

func (c *collector) Begin(d *session.Description) error {
	c.desc = d
	c.rec.Host = d.Hostname
	c.rec.Netns = d.Netns.Inode
	c.rec.Start = d.StartTime
	c.rec.startMono = d.StartMonoNS
	c.rec.OwnersLimited = ownersLimited(d)
	return nil
}

func (c *collector) Event(e *events.Event) error {
	c.last = max(c.last, e.Mono)
	if e.Protocol != events.ProtoTCP || e.Cookie == 0 {
		return nil
	}
	if e.Kind == events.KindStateChange && (e.State == events.StateSynSent || e.State == events.StateSynRecv) {
		c.syn[e.Cookie] = []events.Event{*e}
		return nil
	}
	if e.HasISN {
		end := &End{Rec: c.rec, Cookie: e.Cookie, SndISN: e.SndISN, RcvISN: e.RcvISN,
			Client: e.OldState == events.StateSynSent, Established: e.Time, Handshake: c.syn[e.Cookie]}
		if len(end.Handshake) > 0 && end.Handshake[0].State == events.StateSynSent {
			end.SynSent = end.Handshake[0].Time
		}
		delete(c.syn, e.Cookie)
		end.Events = append(end.Events, *e)
		c.ends[e.Cookie] = end
		c.rec.Ends = append(c.rec.Ends, end)
		return nil
	}
	if end := c.ends[e.Cookie]; end != nil {
		end.Events = append(end.Events, *e)
	} else if hs, ok := c.syn[e.Cookie]; ok {
		if e.Kind == events.KindStateChange && e.State == events.StateClose {
			// A connect that failed: it will never be joined.
			delete(c.syn, e.Cookie)
		} else {
			c.syn[e.Cookie] = append(hs, *e)
		}
	}
	return nil
}

var _ pipeline.DiagnosisSink = (*collector)(nil)

func (c *collector) Diagnosis(d *diagnose.Diagnosis) error {
	if end := c.ends[d.Cookie]; end != nil && d.Cookie != 0 {
		end.Diagnoses = append(end.Diagnoses, *d)
	}
	return nil
}

func (c *collector) End(end *session.End) error {
	mono := max(end.MonoNS, c.last)
	if c.desc != nil && mono != 0 {
		c.rec.End = c.desc.Wall(mono)
	}
	return nil
}

// ownersLimited says what a degraded owner-seed layer may have hidden from
// a recording made with process filters: without an owner, a socket that
// existed before the recording or was accepted from a listener does not
// pass them.
func ownersLimited(d *session.Description) string {
	h, ok := session.Plan(d.Hooks).Layer(session.LayerOwnerSeed)
	if !ok || h.Status() != session.StatusDegraded || !d.Filters.ProcessFilter() {
		return ""
	}
	return "its owner-seed layer was degraded (" + h.Why + "), so under its filters (" + d.Filters.String() +
		") sockets accepted from its listeners and connections older than the recording may be missing from it"
}
