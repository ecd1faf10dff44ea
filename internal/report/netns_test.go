package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"
	"github.com/sendtrace/sendtrace/internal/session"
)

func inNetns(evs []events.Event, ino uint32) []events.Event {
	for i := range evs {
		evs[i].Netns = ino
	}
	return evs
}

// Two system-wide recordings: each header holds sendtrace's own
// namespace (the same sysctls), while the failing clients ran in another
// namespace, with tcp_retries2 4 and then 6. diff compares the
// namespaces the events came from, and report prints each set with the
// namespace it belongs to.
func TestDiffComparesTheNamespacesEventsCameFrom(t *testing.T) {
	own := map[string]string{"net.ipv4.tcp_retries2": "15", "net.core.wmem_max": "1"}
	client := func(ino uint64, retries string) []session.NetnsSysctls {
		return []session.NetnsSysctls{{Netns: session.Netns{PID: 7, Inode: ino}, Comm: "app",
			Sysctls: map[string]string{"net.ipv4.tcp_retries2": retries, "net.core.wmem_max": "1"}}}
	}
	before := writeRec(t, "a.jsonl", recOpts{footer: true, sysctls: own, netns: client(4026532001, "4")}, inNetns(conns(6, 5), 4026532001))
	after := writeRec(t, "b.jsonl", recOpts{footer: true, sysctls: own, netns: client(4026532002, "6")}, inNetns(conns(6, 7), 4026532002))
	a, err := Load(before, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(after, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := Compare(a, b)
	if len(d.Sysctls) != 1 || d.Sysctls[0] != (SysctlDiff{"net.ipv4.tcp_retries2", "4", "6"}) {
		t.Errorf("sysctls that differ: %+v, want tcp_retries2 4 -> 6 from the clients' namespaces", d.Sysctls)
	}
	var buf bytes.Buffer
	if err := WriteDiffText(&buf, d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"before net:[4026532001] (entered through app/7", "after  net:[4026532002]", "net.ipv4.tcp_retries2  4       6"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("diff text lacks %q:\n%s", want, buf.String())
		}
	}

	buf.Reset()
	if err := WriteText(&buf, a, Build(a, BuildOptions{})); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Sysctls of net:[?] (sendtrace's own, read at start, 0 events)",
		"net.ipv4.tcp_retries2  15",
		"Sysctls of net:[4026532001] (entered through app/7, read at its first event, 42 events)",
		"net.ipv4.tcp_retries2  4",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
}
