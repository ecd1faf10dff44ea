package session

import "time"

// NetnsCounters is what one network namespace's own counters (the SNMP
// MIBs nstat shows, by nstat's names) did while the session ran. They
// count every process in the namespace, traced or not, which is what
// makes them a check on the tracer's own counts.
type NetnsCounters struct {
	// Netns.PID is the process through which the counters were read
	// (0: the recorder's own namespace, or one read through its name
	// in /run/netns); Netns.Note says why they could not be read.
	Netns Netns  `json:"netns"`
	Comm  string `json:"comm,omitempty"`
	// From is "start" when the first reading was taken as the session
	// began, or "first event" for a namespace found only when its first
	// event arrived: then what happened before that event is missing.
	From  string    `json:"from"`
	Start time.Time `json:"start_time"`
	End   time.Time `json:"end_time"`
	// Delta is every counter that moved, by how much.
	Delta map[string]int64 `json:"delta"`
}
