package events

import "net/netip"

// A TCP socket whose connect() failed is reset to the unconnected state
// before connect() returns: __inet_stream_connect takes the error
// (sock_error clears sk_err), then calls tcp_disconnect, which clears the
// destination port (and, unless it was bound, the source address) and
// ends with sk_error_report to wake any other waiter. The error-report
// hook sees that second report with sk_err already 0, on the same
// socket: src 0.0.0.0:PORT, dst ADDR:0, state CLOSE, errno 0. It reports
// no error; counted, every refused blocking connect would count twice,
// once under a destination ADDR:0 that nothing connected to. The BPF
// programs leave these reports out of the stream and the totals; recordings
// of older versions hold them, and their reader leaves them out.

// IsDisconnectReport says whether e is such a report: an error report
// with no error, on a socket that is no longer connected (its
// destination port is 0 while its address is still the peer's).
func IsDisconnectReport(e *Event) bool {
	return TotalsKey{Kind: e.Kind, Errno: e.Errno, Dst: e.Dst}.IsDisconnectReport()
}

// IsDisconnectReport says whether the kernel's totals count disconnect
// reports (see IsDisconnectReport) under k.
func (k TotalsKey) IsDisconnectReport() bool {
	return k.Kind == KindErrorReport && k.Errno == 0 && unconnected(k.Dst)
}

func unconnected(dst netip.AddrPort) bool {
	return dst.IsValid() && dst.Port() == 0 && !dst.Addr().IsUnspecified()
}
