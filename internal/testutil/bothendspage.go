package testutil

import (
	"github.com/sendtrace/sendtrace/internal/events"
)

// BothEndsPage is what a test reads from the DOM of a both-ends page.
type BothEndsPage struct {
	Scripts  int
	Text     string
	Overlaps []string // data-overlaps of each pair: "true" or "false"
	Offsets  []struct{ Ms, WithinMs, Text string }
	Joined   []JoinedOnPage
	Listed   []string // reset origin of each joined connection not drawn
	OneEnd   []string // cookies
	Ambig    []string // cookies
	// Sections are each recording's section: its id and where its
	// diagnoses link to.
	Sections []struct {
		ID    string
		Links []string
	}
	// Broken are the in-page links whose target is not on the page.
	Broken []string
}

// JoinedOnPage is one drawn connection.
type JoinedOnPage struct {
	Origin   string
	Cookies  string
	OffsetMs string
	Names    []string
	// Lanes counts, per end, the marks of each class MarkClasses names.
	Lanes [2]map[string]int
	// OriginMarks are the lane ("lane-0", "lane-1") and class of each
	// mark that names the reset's origin.
	OriginMarks []string
	Idle        []string
	// Drops are each end's local drops as the page says them ("none"),
	// empty when neither end's host dropped any.
	Drops     []string
	DataMarks [2]int
	Reached   string
	Diagnosis string
	// States are each lane's state-change marks, in order: where the
	// browser drew them and their hover text.
	States [2][]MarkOnPage
}

// MarkOnPage is one mark: its centre's x in CSS pixels, and its hover text.
type MarkOnPage struct {
	X     float64
	Title string
}

// MarkClasses are the classes a drawing gives an event's mark, one per
// kind (and kind of retransmit).
var MarkClasses = []string{"retrans-rto", "retrans-fast", "retrans-tlp", "retrans-syn", "retrans-synack", "retrans-unknown",
	"mark-send-error", "mark-error-report", "mark-reset-in", "mark-reset-out", "mark-state"}

// MarkClass is the class of MarkClasses an event's mark has; "" for a
// kind that is not drawn.
func MarkClass(e *events.Event) string {
	switch e.Kind {
	case events.KindRetransmit:
		if k := e.RetransKind.String(); k != "" {
			return "retrans-" + k
		}
		return "retrans-unknown"
	case events.KindSendError:
		return "mark-send-error"
	case events.KindErrorReport:
		return "mark-error-report"
	case events.KindReceiveReset:
		return "mark-reset-in"
	case events.KindSendReset:
		return "mark-reset-out"
	case events.KindStateChange:
		return "mark-state"
	}
	return ""
}

// MarksOf counts a socket's events in a recording by MarkClass.
func MarksOf(evs []events.Event, cookie uint64) map[string]int {
	out := map[string]int{}
	for i := range evs {
		if c := MarkClass(&evs[i]); c != "" && evs[i].Cookie == cookie {
			out[c]++
		}
	}
	return out
}

// ReadBothEndsPage reads an open both-ends page.
func (p *Page) ReadBothEndsPage() *BothEndsPage {
	p.t.Helper()
	var out BothEndsPage
	p.Eval(`(() => {
	const kinds = `+jsStrings(MarkClasses)+`;
	const lane = (s, i) => Object.fromEntries(kinds.map(k => [k, s ? s.querySelectorAll(".lane-" + i + "." + k).length : 0]).filter(([, n]) => n > 0));
	return {
		scripts: document.scripts.length,
		text: document.body.textContent,
		overlaps: [...document.querySelectorAll("[data-overlaps]")].map(e => e.dataset.overlaps),
		offsets: [...document.querySelectorAll("#offsets .offset")].map(e => ({ms: e.dataset.offsetMs, withinMs: e.dataset.withinMs, text: e.textContent})),
		joined: [...document.querySelectorAll("details.joined")].map(d => {
			const s = d.querySelector("svg.timeline");
			return {
				origin: d.dataset.resetOrigin,
				cookies: d.dataset.cookies,
				offsetMs: (d.querySelector(".clock .offset") || {dataset: {}}).dataset.offsetMs || "",
				names: [...d.querySelectorAll("svg text.endname")].map(e => e.textContent),
				lanes: [lane(s, 0), lane(s, 1)],
				originMarks: [...d.querySelectorAll("svg .reset-origin:not(text)")].map(e => [...e.classList].filter(c => c.startsWith("lane-") || c.startsWith("reset-origin-")).join(" ")),
				idle: [...d.querySelectorAll(".idle [class^='idle-']")].map(e => e.textContent),
				drops: [...d.querySelectorAll(".drops [class^='drops-']")].map(e => e.textContent),
				dataMarks: [0, 1].map(i => d.querySelectorAll("svg circle.datamark.lane-" + i).length),
				reached: (d.querySelector(".data") || {dataset: {}}).dataset.reached || "",
				diagnosis: d.querySelector(".reconciled p").textContent,
				states: [0, 1].map(i => [...d.querySelectorAll("svg .lane-" + i + ".mark-state")].map(m => {
					const r = m.getBoundingClientRect();
					return {x: r.x + r.width / 2, title: m.querySelector("title").textContent};
				})),
			};
		}),
		listed: [...document.querySelectorAll("tr.joined-row")].map(e => e.dataset.resetOrigin),
		oneEnd: [...document.querySelectorAll("tr.one-end")].map(e => e.dataset.cookie),
		ambig: [...document.querySelectorAll("tr.ambiguous")].map(e => e.dataset.cookie),
		sections: [...document.querySelectorAll("section.recording")].map(s => ({id: s.id,
			links: [...s.querySelectorAll(".diag a[href^='#']")].map(a => a.getAttribute("href"))})),
		broken: [...document.querySelectorAll("a[href^='#']")].map(a => a.getAttribute("href")).filter(h => !document.getElementById(h.slice(1))),
	};
})()`, &out)
	return &out
}

func jsStrings(ss []string) string {
	b := []byte{'['}
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	}
	return string(append(b, ']'))
}
