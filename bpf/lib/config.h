/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Filters and kernel facts, set from Go before load. Being read-only data,
 * the verifier sees them as constants and prunes the branches a session
 * does not need. */
#pragma once

#define MAX_PIDS 16
#define MAX_COMMS 4
#define MAX_CGROUPS 16 /* a pod is several containers, each its own cgroup */
#define MAX_CIDRS 8
#define MAX_PORTS 8
#define MAX_ERRNOS 8

struct cidr {
	__u8 family; /* AF_INET or AF_INET6 */
	__u8 prefixlen;
	__u8 _pad[2];
	__u8 addr[16];
};

struct config {
	__u32 npids;
	__u32 pids[MAX_PIDS];
	__u32 ncomms;
	char comms[MAX_COMMS][16];
	__u32 ncgroups;
	__u64 cgroups[MAX_CGROUPS];
	__u32 ncidrs;
	struct cidr cidrs[MAX_CIDRS];
	__u32 nports;
	__u16 ports[MAX_PORTS];
	__u32 nerrnos;
	__s32 errnos[MAX_ERRNOS];
	/* Our own process: its sends to the terminal or a file never matter. */
	__u32 self_pid;
	/* Kernel facts found by the loader in BTF. */
	__u8 retransmit_has_err;  /* tcp_retransmit_skb(sk, skb, err): 6.17+ */
	__u8 send_reset_has_reason; /* tcp_send_reset(sk, skb, reason): 6.10+ */
	/* Emit state changes of owned sockets even before anything failed on
	 * them (set when a process filter narrows the stream). */
	__u8 all_state_changes;
	/* Count successful sends per socket (recordings need rates). Off in
	 * live mode, where the verifier then prunes it from the hot path. */
	__u8 count_sends;
	/* Keep each destination's traffic (connections, bytes, segments) at
	 * every socket's close, for recordings and the live summary. serve
	 * exports none of it, and there the map would only fill with a key
	 * per process and destination a node ever had. */
	__u8 keep_traffic;
	/* sys_exit is attached: a stack failure inside a send syscall waits
	 * for the syscall's exit to be joined with the errno the caller got. */
	__u8 syscall_layer;
	/* The running kernel's SKB_CONSUMED, a free that is not a drop
	 * (0xffffffff where it has none). */
	__u32 drop_consumed;
	/* The running kernel's SKB_DROP_REASON_TCP_CLOSE (0xffffffff where it
	 * has none). */
	__u32 drop_tcp_close;
	/* Drop events streamed per socket and second; the rest are counted
	 * only. 0: no limit. */
	__u32 drop_limit;
	/* Wake the reader only once this many bytes wait in the ring buffer;
	 * it reads on a timer too. 0: wake it for every record. */
	__u32 wakeup_bytes;
	/* The legacy object's socket ids are addresses XORed with this, so
	 * that no kernel address reaches a recording. */
	__u64 cookie_salt;
};
