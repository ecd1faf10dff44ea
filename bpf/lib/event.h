/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The records shared with Go. bpf2go generates the Go side from these
 * (-type event, -type totals_key, ...), so nothing is mirrored by hand. */
#pragma once

#define TASK_COMM_LEN 16

enum event_kind {
	KIND_SEND_ERROR = 1,
	KIND_RETRANSMIT = 2,
	KIND_ERROR_REPORT = 3,
	KIND_RECEIVE_RESET = 4,
	KIND_SEND_RESET = 5,
	KIND_STATE_CHANGE = 6,
	KIND_DROP = 7,
};

/* Why a segment was retransmitted, told apart inside the tracepoint the way
 * the kernel's own counters tell them apart (see retrans_kind_of). */
enum retrans_kind {
	RETRANS_RTO = 1,    /* in CA_Loss: the timer's retransmit and the loss recovery after it */
	RETRANS_FAST = 2,   /* recovery from duplicate ACKs, SACK or RACK (TCPFastRetrans) */
	RETRANS_TLP = 3,    /* tail loss probe (TCPLossProbes) */
	RETRANS_SYN = 4,    /* a SYN (TCPSynRetrans) */
	RETRANS_SYNACK = 5, /* a listener's SYN-ACK (TCPSynRetrans) */
	/* Totals only: segments the kernel counted for a socket with no
	 * retransmit event (see count_untraced). */
	RETRANS_UNTRACED = 6,
};

/* Which way a dropped packet was going, seen from the socket. */
enum drop_dir {
	DROP_OUT = 1,
	DROP_IN = 2,
};

enum event_layer {
	LAYER_STACK = 1,
	LAYER_SYSCALL = 2,
	LAYER_BOTH = 3,
};

enum limits {
	/* since_send_j/since_recv_j when the socket has no such time. */
	JIFFIES_UNKNOWN = 0xffffffffu,
	/* The pid the totals count an OWNER_PENDING event under, until
	 * user space says whose it was. */
	PENDING_PID = 0xffffffffu,
};

/* How an event's owner was found. */
enum owner_via {
	OWNER_VIA_KERNEL = 0,  /* in process context, or by the seeding iterator */
	OWNER_VIA_PROC = 1,    /* by user space, through /proc/PID/fd */
	/* Not found: user space looks the socket's inode up in /proc,
	 * applies the process filters and writes the answer to proc_owners. */
	OWNER_PENDING = 2,
};

/* One flat record for every kind: Go tells kinds apart by the kind field,
 * never by size. Fields that do not apply to a kind are zero. */
struct event {
	__u64 ts_ns;
	__u64 cookie;
	__u64 cgroup;
	__u64 drop_location; /* kernel address of the code that dropped the packet */
	__u32 pid;
	__u32 tid;
	char comm[TASK_COMM_LEN];
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* host byte order */
	__u16 dport; /* host byte order */
	__u16 family;
	__u8 protocol;
	__u8 state;
	__u8 old_state;
	__u8 kind;
	__u8 layer;
	__u8 owner_known;
	__u32 bytes;
	__s32 err;       /* positive errno seen by the application (or the kernel) */
	__s32 stack_err; /* positive errno returned by the protocol's sendmsg */
	__u32 syscall_nr;
	/* TCP details, read from tcp_sock at the time of the event. */
	__u32 since_send_j; /* jiffies since last data sent, JIFFIES_UNKNOWN if unknown */
	__u32 since_recv_j; /* jiffies since last data received */
	__u32 rto_j;
	__u32 seq;
	__u32 retransmits;
	__u32 total_retrans;
	__u32 srtt_us;
	__u32 cwnd;
	__u32 send_q;
	__u32 sndbuf;
	__u32 snd_wnd;
	__u32 mss;
	__s32 retrans_err; /* the kernel's err: -errno, or a NET_XMIT_* code (1: dropped by a qdisc) */
	__u32 reset_reason;
	/* retransmit: segments the kernel added to TcpRetransSegs (0 for an
	 * attempt that failed before it counted); drop: segments the packet
	 * carried. */
	__u32 segs;
	__u32 drop_reason;   /* enum skb_drop_reason, as the running kernel numbers it */
	char drop_dev[16];   /* the packet's device, when it had one */
	__u8 backoff;
	__u8 retrans_kind;
	__u8 drop_dir;
	__u8 owner_via; /* enum owner_via */
	__u32 data_segs_in; /* data segments received from the peer (RFC 4898) */
	__u32 netns;        /* inode of the socket's network namespace: whose sysctls apply */
	/* Sequence state, which survives NAT: the two ends of one connection
	 * are joined by their initial sequence numbers, and a retransmitted
	 * seq is compared with the other end's rcv_nxt. */
	__u32 snd_una;
	__u32 rcv_nxt;
	__u32 snd_isn; /* our ISN: in the ESTABLISHED state change only */
	__u32 rcv_isn; /* the peer's ISN, likewise */
	__u64 sock_ino; /* the socket's inode, for an OWNER_PENDING event */
};

/* Exact totals, kept per CPU whatever happens to the ring buffer, per
 * process, destination, kind and errno. For a retransmit, err is the
 * failure's errno (0 when it went out) and detail its enum retrans_kind;
 * for a drop, detail is the drop reason. */
struct totals_key {
	__u32 pid;
	__s32 err;
	__u32 detail;
	__u16 family;
	__u16 dport;
	__u8 daddr[16];
	__u8 kind;
	__u8 _pad[7];
};

struct totals_val {
	__u64 count; /* events */
	__u64 bytes;
	__u64 segs;  /* retransmits: segments counted in TcpRetransSegs; drops: segments dropped */
};

/* Per-destination traffic, read from tcp_sock when a socket closes and, for
 * sockets still open, by the socket iterator when the session stops. */
struct dst_key {
	__u32 pid;
	__u16 family;
	__u16 dport;
	__u8 daddr[16];
};

struct dst_val {
	__u64 sends;      /* successful send calls (when counting sends) */
	__u64 send_bytes; /* bytes they returned */
	__u64 conns;
	__u64 bytes_sent;
	__u64 data_segs_out;
	__u64 retrans_segs;
	__u64 bytes_retrans;
};

/* What the socket's owner looked like in process context. Lives in socket
 * local storage, so it is freed with the socket. */
struct owner {
	__u64 sends; /* successful sends, when the session counts them */
	__u64 send_bytes;
	__u64 cgroup;
	__u32 pid;
	__u32 tid;
	char comm[TASK_COMM_LEN];
	__u64 cookie;
	__u64 drop_window; /* start of the current second of streamed drops */
	__u32 drop_streamed; /* drop events streamed in that second */
	/* tcp_sock.total_retrans at the socket's last retransmit event, to
	 * tell whether a failed retransmit was counted (rtx_known: valid). */
	__u32 rtx_seen;
	__u8 interesting; /* an event was emitted for this socket */
	__u8 dst_counted; /* its counters already went to dst_stats */
	/* Seeded to a listener, or cloned from one into an accepted socket
	 * (BPF_F_CLONE): the task holding the socket, once seen, replaces it. */
	__u8 inherited;
	__u8 rtx_known;
	__u8 via_proc; /* found by user space through /proc */
	__u8 _pad[3];
};
