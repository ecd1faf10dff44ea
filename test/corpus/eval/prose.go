package main

const intro = `# How far the diagnosis can be trusted

This page is written by ` + "`make diagnose-eval`" + `; do not edit it by hand.

Each case of the fault corpus (test/corpus) is a fault built in network
namespaces (internal/netlab), with a real client, recorded by
` + "`sendtrace record --dst SERVER`" + ` as a user would record it, and
replayed through the diagnosis as ` + "`sendtrace report`" + ` replays a
recording. Every case knows its true cause from how the lab made it, and
the diagnoses that name that cause. A case's answer is:

- **correct**: its cause's diagnosis is there at medium or high
  confidence, and no diagnosis above low confidence names anything else
  (for a case where nothing fails, correct is no diagnosis at all);
- **wrong**: a diagnosis above low confidence names another cause;
- **unknown**: no diagnosis, or low confidence ones only. Not wrong, not
  correct: a low-confidence answer says why it is unsure.

The recordings are committed (test/corpus/testdata, one ` + "`.jsonl.zst`" + ` and
its label per case), and ` + "`make test`" + ` replays every one of them
(TestCorpusReplay): a change to a rule that changes any case's answer,
rule or confidence, fails until its label is rewritten
(` + "`make diagnose-corpus`" + ` records the corpus again and rewrites them).

The kernel timeouts are shortened in the client's namespace so that each
case ends in seconds: net.ipv4.tcp_retries2=3, tcp_syn_retries=2,
tcp_keepalive_time=1, tcp_keepalive_intvl=1, tcp_keepalive_probes=2. The
middlebox is the router's conntrack with a 2 s established timeout, and
the PMTU black hole a 1280-byte hop whose ICMP errors are dropped.

`

const matrixNote = `Rows: the deciding diagnosis of each case (its most confident wrong one
if any, otherwise its cause's; ` + "`none`" + `: no diagnosis). Columns: the true cause.
A cell counts cases by that diagnosis's confidence (h, m, l); a bare
count is a case with no diagnosis.

`

const pinned = `
## Wrong answers found before, and what pins them

- A firewall on the server's host dropping an upload after some 226
  full-size segments had been acknowledged was called a path MTU black
  hole: ` + "`black-hole-remote-firewall_upload_actor_mid_*`" + ` (black-hole, high).
- Six curl uploads at 200 KB/s into a black hole got idle-reset on some
  connections: ` + "`black-hole-remote-firewall_rate-upload_curl_mid_v4`" + ` (black-hole x6).
- A timed-out connection's setting guessed from its duration: every
  timed-out connection of the corpus names the tcp_retries2=3 or
  tcp_syn_retries=2 recorded for its namespace (TestCorpusSettings).
- A retry storm counting the first 8 of its connections: the storm cases'
  answers hold the count, 20 or 30, every connection the client opened.
- A refused connect counted twice: each refused case has one diagnosis.
- Found by the corpus: net/http and iperf3 uploads called backpressure at
  high confidence (their non-blocking writes meet EAGAIN from the start,
  and a zero window for a moment), ICMP host unreachable answering a SYN
  left unnamed (IPv4: its errno read by the client first) or called a
  black hole (IPv6: after one retransmitted SYN), and keepalive expiry
  left at low confidence.
`

const leftOut = `
## Crossings left out, and why

- **UDP with a black hole, PMTU, reset, idle, zero window, keepalive or
  user timeout**: UDP has no acknowledgement, connection or window; a
  datagram lost on the path fails no send, so there is nothing for the
  sender's diagnosis to see. UDP is crossed with what a sender does see:
  a local drop (EPERM), ICMP host unreachable and port unreachable
  (ECONNREFUSED on a connected socket).
- **Download with a black hole, PMTU black hole or local drop of ACKs**:
  the client sends requests and ACKs only; when the path dies the
  client's kernel has nothing to retransmit, and its only failure is
  the application's own timeout. The server is the sender that fails;
  its side is where sendtrace sees it (a recording on the server).
  Downloads are crossed with a peer reset, an application timeout and a
  healthy control.
- **Refused, ICMP unreachable and retry storms mid-stream or after
  idle**: they are answers to a SYN; mid-stream the same rejection is a
  reset (peer reset) or a soft error under a retransmit chain (black
  hole).
- **Middlebox idle reset mid-stream, and bulk or rate-limited uploads
  after idle**: a flow that carries data is never idle, so the
  middlebox's idle timeout cannot hit it.
- **Backpressure with curl, Go's net/http and iperf3**: curl's upload
  into a reader that never reads waits in poll() without a failed send;
  Go and iperf3 get the same EAGAIN at a zero window as the actor,
  Python and Node, and are not in the corpus yet. Their EAGAIN with the
  window open (a sender faster than the path) is in it: every iperf3 and
  net/http upload makes it, and it must not be named.
- **TCP_USER_TIMEOUT and keepalive with curl, Node and Go**: none of
  them sets the option by default to seconds; Python's socket sets both.
- **iperf3 for request/response, idle and UDP**: iperf3 measures
  throughput; its UDP mode sends into a black hole without any error.
- **Faults on the client host other than a local drop**: a local
  shutdown and seccomp (outside-stack) are covered by test/diagnose.
`

const rules = `
## The rules: their evidence, and what could make them wrong

- **idle-reset**: a reset (or an error, or a send's retransmits that end
  in ETIMEDOUT: the silent form) right after the first send following a
  silence of at least 2 s with no data from the peer, on a connection
  that had under two full-size segments unacknowledged or queued (one
  that was sending is not idle, however long the peer has only
  acknowledged). High confidence from 30 s of silence; medium below;
  low when the peer never sent data (the silence may be one-sided).
  *Wrong when*: a peer that restarted, or a black hole that began while
  the connection idled, looks the same from the client; a peer that
  closes idle keep-alive connections with a reset is called a middlebox
  (the text says a peer restart would look the same).
- **peer-reset**: a reset from the peer's direction on a connection that
  was not idle. Medium: the tracer cannot tell the peer from a device on
  the path that resets for it. *Wrong when*: a firewall on the path
  rejects with a TCP reset mid-stream.
- **black-hole**: the same segment retransmitted with growing backoff
  and never acknowledged until the kernel gave up (ETIMEDOUT, or the ICMP
  error stored as the soft error), with no local drop of it; the
  timeout's setting as recorded for the socket's namespace. High with two
  or more retransmits that backed off; medium with one; medium with none
  and nothing unacknowledged (keepalive probes unanswered: the peer or
  the path stopped answering while the connection idled); low with none
  and data queued (TCP_USER_TIMEOUT, or events lost).
  *Wrong when*: an ICMP unreachable that arrived under a retransmit
  chain is the real answer; a local drop the tracer missed (drop events
  lost) looks like a path black hole; a middlebox that forgot an idle
  flow and drops keepalive probes looks like a black hole that began
  during the idle (both count as correct for keepalive expiry).
- **pmtu-black-hole**: every retransmit of the stuck segment full-size,
  the MSS unchanged, segments over 1280 bytes, and small packets known to
  cross: data from the peer still arriving (high), or an answer within a
  second before the stuck segment (medium). Never when ten full-size
  segments' worth had been acknowledged before. *Wrong when*: a path that
  dies just as a new connection sends its first full-size segment.
- **local-drop**: this host's kernel dropped the socket's packets
  (skb:kfree_skb with the socket, a reason such as NETFILTER_DROP) on the
  way out, the segment the retransmits repeat among them, or a datagram
  send failed with EPERM. *Wrong when*: drop events were lost (the
  recording's loss counters say so), or the drop was incidental to a
  failure elsewhere.
- **backpressure**: EAGAIN or ENOBUFS from a send while the peer's
  window has stayed at zero for a second with nothing acknowledged (a
  reader that does not read), or with Send-Q well below SO_SNDBUF
  (memory pressure, medium). With the window open nothing is named: a
  non-blocking sender faster than the path (iperf3, Go) fills its buffer
  from its first writes, and one behind a black hole because nothing is
  acknowledged. *Wrong when*: a reader slower than the path for more
  than a second with its window shut; *unknown when* the sender waits
  for POLLOUT after one EAGAIN with the window still open (Node's libuv):
  zero-window probes are not traced, so the window closing later is not
  seen.
- **refused-unreachable**: a reset answering the SYN, ECONNREFUSED
  (a reset or ICMP port unreachable), or EHOSTUNREACH / ENETUNREACH with
  no retransmit chain before it (or one retransmitted SYN). High: the
  kernel's own answer. Medium for a connect that ended at once in
  SYN_SENT after an error report whose errno the application read before
  the tracer (the report says 0), with no reset and no retransmit: an
  ICMP error answered the SYN (IPv4 host unreachable does this to curl and
  Python). *Wrong when*: a firewall's reject is read as nothing listening
  (the text says a firewall may reject).
- **local-shutdown**: EPIPE on a socket this side shut down for writing.
- **outside-stack**: an errno from the system call before the socket
  layer (seccomp, LSM).
- **retry-storm**: one process opening at least 8 connections to one
  destination within 10 s, at least 3 of them failed. *Wrong when*: a
  pool that opens many connections legitimately while some fail; one
  process per attempt (a shell loop of curl) is never a storm, each
  attempt being its own process.
`
