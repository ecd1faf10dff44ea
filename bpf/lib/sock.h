/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reading a socket into an event. Everything goes through CO-RE reads, so
 * the same code serves BTF pointers (tp_btf, fexit) and plain kernel
 * addresses (a socket found from a file descriptor, kretprobe). */
#pragma once

#define AF_INET 2
#define AF_INET6 10
#define PF_KTHREAD 0x00200000
#define S_IFMT 00170000
#define S_IFSOCK 0140000

static __always_inline void fill_tcp(struct event *e, struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 now = (__u32)bpf_jiffies64();
	__u32 t;

	t = BPF_CORE_READ(tp, lsndtime);
	e->since_send_j = t ? now - t : JIFFIES_UNKNOWN;
	t = BPF_CORE_READ(tp, inet_conn.icsk_ack.lrcvtime);
	e->since_recv_j = t ? now - t : JIFFIES_UNKNOWN;
	e->rto_j = BPF_CORE_READ(tp, inet_conn.icsk_rto);
	e->retransmits = BPF_CORE_READ(tp, inet_conn.icsk_retransmits);
	e->backoff = BPF_CORE_READ(tp, inet_conn.icsk_backoff);
	e->total_retrans = BPF_CORE_READ(tp, total_retrans);
	e->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	e->cwnd = BPF_CORE_READ(tp, snd_cwnd);
	e->send_q = BPF_CORE_READ(tp, write_seq) - BPF_CORE_READ(tp, snd_una);
	e->snd_wnd = BPF_CORE_READ(tp, snd_wnd);
	e->mss = BPF_CORE_READ(tp, mss_cache);
	e->data_segs_in = BPF_CORE_READ(tp, data_segs_in);
	e->snd_una = BPF_CORE_READ(tp, snd_una);
	e->rcv_nxt = BPF_CORE_READ(tp, rcv_nxt);
}

/* fill_addrs fills family, state and the addresses from the part every
 * kind of socket shares: full sockets, request socks and time-wait socks. */
static __always_inline bool fill_addrs(struct event *e, struct sock_common *skc)
{
	e->family = BPF_CORE_READ(skc, skc_family);
	/* Each network namespace has its own tcp_retries2, keepalive and
	 * buffer sysctls: the recording reads those of the namespaces its
	 * events come from. */
	e->netns = BPF_CORE_READ(skc, skc_net.net, ns.inum);
	e->state = BPF_CORE_READ(skc, skc_state);
	e->sport = BPF_CORE_READ(skc, skc_num);
	e->dport = bpf_ntohs(BPF_CORE_READ(skc, skc_dport));
	if (e->family == AF_INET) {
		bpf_core_read(e->saddr, 4, &skc->skc_rcv_saddr);
		bpf_core_read(e->daddr, 4, &skc->skc_daddr);
	} else if (e->family == AF_INET6) {
		bpf_core_read(e->saddr, 16, &skc->skc_v6_rcv_saddr);
		bpf_core_read(e->daddr, 16, &skc->skc_v6_daddr);
	} else {
		return false;
	}
	return true;
}

/* fill_sock fills addresses, protocol and TCP state. The cookie is left to
 * the caller: only BTF pointers can ask the kernel to generate one. */
static __always_inline void fill_sock(struct event *e, struct sock *sk)
{
	bool inet = fill_addrs(e, &sk->__sk_common);

	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	/* A closed TCP socket has given its local port back (skc_num is 0),
	 * but inet_sport still says which port it used. */
	if (!e->sport)
		e->sport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	e->sndbuf = BPF_CORE_READ(sk, sk_sndbuf);
	if (inet && e->protocol == IPPROTO_TCP)
		fill_tcp(e, sk);
}

/* sock_of_file returns the socket behind a file, or NULL when the file is
 * not a socket. It reads through plain kernel addresses rather than
 * bpf_sock_from_file() (5.11+), whose socket newer verifiers refuse to
 * follow to a trusted struct sock. */
static __always_inline struct sock *sock_of_file(struct file *file)
{
	struct socket *sock;

	if (!file)
		return NULL;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

/* sock_from_fd finds the socket behind one of the current task's file
 * descriptors, or returns NULL when the descriptor is not a socket. */
static __always_inline struct sock *sock_from_fd(int fd)
{
	struct task_struct *task = current_task();
	struct file **fds;
	struct file *file = NULL;
	unsigned int max;

	if (fd < 0)
		return NULL;
	max = BPF_CORE_READ(task, files, fdt, max_fds);
	if ((unsigned int)fd >= max)
		return NULL;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return NULL;
	return sock_of_file(file);
}
