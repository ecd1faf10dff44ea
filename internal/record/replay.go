package record

import (
	"fmt"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/pipeline"
	"github.com/sendtrace/sendtrace/internal/session"
)

// Replay reads a whole recording into a pipeline, as the live session
// delivered it: the header's description, every event, and the footer's
// totals (none when the recorder was stopped before writing it). It
// returns the reader, whose Footer, Truncated and Skipped say how
// complete the file was.
func Replay(path string, p *pipeline.Pipeline) (*Reader, error) {
	rd, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	if err := p.Begin(&rd.Header.Description); err != nil {
		return nil, err
	}
	var e events.Event
	for {
		ok, err := rd.Next(&e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if !ok {
			break
		}
		if err := p.Event(&e); err != nil {
			return nil, err
		}
	}
	end := &session.End{Received: rd.EventsRead}
	if rd.Footer != nil {
		end = rd.Footer.End()
	}
	return rd, p.End(end)
}
