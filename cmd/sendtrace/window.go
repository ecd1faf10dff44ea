package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// The window of a flight recording that serve's GET /recording gives is
// asked for with the flags of report --flight, as query parameters:
// since, until, and the filters, each repeated or comma-separated as its
// flag may be. report sends its flags to each agent this way, and the
// agent parses them as report --flight does.

// windowLists are the filters' parameters and where windowFlags keeps
// them.
func (wf *windowFlags) windowLists() []struct {
	name   string
	values *[]string
} {
	return []struct {
		name   string
		values *[]string
	}{{"pid", &wf.pids}, {"comm", &wf.comms}, {"dst", &wf.dsts}, {"port", &wf.ports},
		{"container", &wf.containers}, {"pod", &wf.pods}, {"unit", &wf.units}}
}

// query is the window as GET /recording's parameters.
func (wf *windowFlags) query() url.Values {
	q := url.Values{}
	if wf.since != "" {
		q.Set("since", wf.since)
	}
	if wf.until != "" {
		q.Set("until", wf.until)
	}
	for _, l := range wf.windowLists() {
		if len(*l.values) > 0 {
			q[l.name] = slices.Clone(*l.values)
		}
	}
	return q
}

// windowFromQuery reads GET /recording's parameters. Its window and
// filter methods check them.
func windowFromQuery(q url.Values) (*windowFlags, error) {
	wf := &windowFlags{}
	lists := wf.windowLists()
	known := []string{"since", "until"}
	for _, l := range lists {
		known = append(known, l.name)
	}
	for k, v := range q {
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("unknown parameter %q: give since, until and the filters %s", k, strings.Join(known[2:], ", "))
		}
		if (k == "since" || k == "until") && len(v) > 1 {
			return nil, fmt.Errorf("%s is given %d times: give it once", k, len(v))
		}
	}
	wf.since, wf.until = q.Get("since"), q.Get("until")
	for _, l := range lists {
		for _, v := range q[l.name] {
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					*l.values = append(*l.values, s)
				}
			}
		}
	}
	return wf, nil
}
