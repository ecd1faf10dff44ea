package main

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sendtrace/sendtrace/internal/session"
)

// check's table fits a 100-column terminal, even with a degraded layer
// whose refused candidates carry long kernel messages.
func TestCheckTableFits100Columns(t *testing.T) {
	hooks := session.Plan{
		{Layer: "send-return", Why: "no hook for this layer on this kernel", Tried: []string{
			"tp_btf/sock_send_length: disabled by --disable-hook",
			"fexit/tcp_sendmsg,udp_sendmsg,udpv6_sendmsg: load fexit_tcp_sendmsg: program fexit_tcp_sendmsg: load program: operation not permitted (MEMLOCK may be too low, consider rlimit.RemoveMemlock)",
			"kretprobe/tcp_sendmsg,udp_sendmsg,udpv6_sendmsg: attach kprobe_tcp_sendmsg: creating tracefs event (arch-specific fallback for \"tcp_sendmsg\"): creating probe entry on tracefs: open /sys/kernel/tracing/kprobe_events: no such file or directory",
		}},
		{Layer: "syscall-exit", Hook: "tp_btf/sys_exit", Active: true, Why: "the only place that sees the errno the application got (seccomp, LSM, ECOMM)"},
		{Layer: "retransmit", Hook: "tp_btf/tcp_retransmit_skb", Active: true, Why: "every TCP retransmission; with the err argument (6.17+): failed retransmits too"},
		{Layer: "reset", Hook: "tp_btf/tcp_receive_reset,tcp_send_reset", Active: true, Why: "resets received and sent; with the reset reason"},
		{Layer: "open-counters", Hook: "iter/tcp", Active: true, Why: "counters of sockets still open when the session stops"},
	}
	var b bytes.Buffer
	if err := writeCheckTable(&b, hooks); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		if n := utf8.RuneCountInString(line); n > 100 {
			t.Errorf("line %d is %d columns: %s", i+1, n, line)
		}
	}
	for _, want := range []string{"operation not permitted", "kprobe_events: no such file", "DEGRADED", "tcp_send_reset"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the table lost %q:\n%s", want, b.String())
		}
	}
	if t.Failed() {
		t.Logf("check output:\n%s", b.String())
	}
}
