package flight

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/record"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Window writes to w one zstd recording, in the format `sendtrace record`
// writes, of the events between since and until (zero until: now) found
// in dir; filter (may be nil) keeps the events it returns true for.
//
// The header is that of the first segment in the window (the session's
// sysctls and hooks), starting at the window's start. The footer's
// totals are the kernel's for every segment wholly inside the window,
// and the events' own counts for the segments the window cuts, for
// segments without a footer (a crash), and for every segment when a
// filter is given (the kernel's totals cannot be filtered by workload).
//
// It returns ErrNoData when no segment covers any part of the window,
// and a *BeforeHistoryError when since is before the directory's history
// (historyStart).
func Window(dir string, since, until time.Time, filter func(*events.Event) bool, w io.Writer) error {
	if until.IsZero() {
		until = time.Now()
	}
	if until.Before(since) {
		return fmt.Errorf("the window ends (%s) before it starts (%s): give an --until after --since", until.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
	}
	segs, err := listSegments(dir)
	if err != nil {
		return dirError(dir, err)
	}
	start := historyStart(dir, segs)
	if start.IsZero() {
		return ErrNoData
	}
	if since.Before(start) {
		return &BeforeHistoryError{Start: start}
	}
	if len(segs) == 0 {
		return ErrNoData
	}
	var picked []segment
	for i, s := range segs {
		end := s.end
		if i+1 < len(segs) && segs[i+1].start.Before(end) {
			end = segs[i+1].start
		}
		s.end = end
		if !s.start.After(until) && !end.Before(since) {
			picked = append(picked, s)
		}
	}
	if len(picked) == 0 {
		return ErrNoData
	}
	return writeWindow(picked, since, until, filter, w)
}

// windowWriter copies the events of the picked segments into one
// recording and sums their totals.
type windowWriter struct {
	since, until time.Time
	filter       func(*events.Event) bool
	h            *record.Header
	out          *record.Writer
	totals       events.Totals
	dests        events.Dests
	namespaces   map[uint64]session.NetnsSysctls
	nsOrder      []uint64
	written      uint64
	note         record.FlightWindow
}

func writeWindow(picked []segment, since, until time.Time, filter func(*events.Event) bool, w io.Writer) error {
	first, err := record.Open(picked[0].path)
	if err != nil {
		return err
	}
	h := *first.Header
	first.Close()
	start := since
	if start.Before(h.StartTime) {
		start = h.StartTime
	}
	h.StartMonoNS += uint64(start.Sub(h.StartTime))
	h.StartTime = start
	h.Duration = ""
	ww := &windowWriter{since: since, until: until, filter: filter, h: &h, note: record.FlightWindow{Since: since.UTC(), Until: until.UTC()},
		totals: events.Totals{ByKey: map[events.TotalsKey]events.TotalsValue{}}, namespaces: map[uint64]session.NetnsSysctls{}}
	ww.out, err = record.NewStreamWriter(w, "flight window", record.CompressZstd, &h)
	if err != nil {
		return err
	}
	for _, s := range picked {
		if err := ww.copySegment(s); err != nil {
			ww.out.Close(nil)
			return err
		}
	}
	end := until
	if last := picked[len(picked)-1].end; last.Before(end) {
		end = last
	}
	if end.Before(start) {
		end = start
	}
	ns := make([]session.NetnsSysctls, 0, len(ww.nsOrder))
	for _, ino := range ww.nsOrder {
		ns = append(ns, ww.namespaces[ino])
	}
	fin := &session.End{Time: end, MonoNS: h.StartMonoNS + uint64(end.Sub(start)), Totals: &ww.totals, Namespaces: ns}
	f := record.NewFooter(fin, &h, ww.written, record.DestinationsFromEvents(&ww.dests), "events")
	f.Window = &ww.note
	return ww.out.Close(f)
}

// bootShift moves mono times of another boot onto the window header's
// clock. Sessions of one boot measure its start a few microseconds
// apart, which is not a reason to move their events.
func (ww *windowWriter) bootShift(h *record.Header) time.Duration {
	d := h.BootTime.Sub(ww.h.BootTime)
	if d < time.Second && d > -time.Second {
		return 0
	}
	return d
}

func (ww *windowWriter) copySegment(s segment) error {
	rd, err := record.Open(s.path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil // rotated away while the window was read
		}
		return err
	}
	defer rd.Close()
	shift := ww.bootShift(rd.Header)
	whole := ww.filter == nil && !s.start.Before(ww.since) && !s.end.After(ww.until)
	var seg events.Totals
	seg.ByKey = map[events.TotalsKey]events.TotalsValue{}
	var e events.Event
	for {
		ok, err := rd.Next(&e)
		if err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
		if !ok {
			break
		}
		if e.Time.Before(ww.since) || e.Time.After(ww.until) || ww.filter != nil && !ww.filter(&e) {
			continue
		}
		if shift != 0 {
			e.Mono = uint64(int64(e.Mono) + int64(shift))
		}
		if err := ww.out.WriteEvent(&e); err != nil {
			return err
		}
		ww.written++
		ww.dests.Observe(&e)
		countEvent(&seg, &e)
	}
	ww.note.Segments++
	if rd.Footer == nil {
		ww.note.Unfinished++
	}
	if whole && rd.Footer != nil {
		ww.note.KernelSegments++
		t := rd.Footer.EventsTotals()
		ww.totals.AddKeys(t)
		ww.totals.LostKernel += t.LostKernel
		ww.totals.LostUser += t.LostUser
		ww.totals.Unstreamed += t.Unstreamed
	} else {
		ww.totals.AddKeys(&seg)
		ww.note.EventsCounted += seg.Sum(events.KindUnknown)
	}
	if rd.Footer != nil {
		for _, n := range rd.Footer.Namespaces {
			if _, ok := ww.namespaces[n.Netns.Inode]; !ok {
				ww.namespaces[n.Netns.Inode] = n
				ww.nsOrder = append(ww.nsOrder, n.Netns.Inode)
			}
		}
	}
	return nil
}

// countEvent counts e as the kernel's totals count it.
func countEvent(t *events.Totals, e *events.Event) {
	k := events.TotalsKeyOf(e)
	v := t.ByKey[k]
	v.Count++
	v.Bytes += uint64(e.Bytes)
	v.Segs += events.EventSegs(e)
	t.ByKey[k] = v
}
