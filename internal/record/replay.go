package record

import (
	"bytes"
	"encoding/json"
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
	// The footer holds the sysctls of the namespaces other than the
	// header's, which the diagnosis of the events needs before them.
	p.Namespaces(footerNamespaces(path))
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

// footerPrefix starts the footer record as the writer encodes it.
var footerPrefix = []byte(`{"kind":"` + KindFooter + `"`)

// footerNamespaces reads ahead to the footer for the sysctls of the
// namespaces it lists: a pass over the lines that parses none but the
// footer. nil when the file has no footer (a recording cut short) or
// cannot be read; Replay's own pass reports what is wrong with it.
func footerNamespaces(path string) []session.NetnsSysctls {
	rd, err := Open(path)
	if err != nil {
		return nil
	}
	defer rd.Close()
	for {
		line, err := rd.readLine()
		if err != nil || line == nil {
			return nil
		}
		if !bytes.HasPrefix(line, footerPrefix) {
			continue
		}
		var f struct {
			Namespaces []session.NetnsSysctls `json:"netns_sysctls"`
		}
		if json.Unmarshal(line, &f) != nil {
			return nil
		}
		return f.Namespaces
	}
}
