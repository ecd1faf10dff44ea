// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sendtrace: why sends fail.
 *
 * Two layers see a failed send. The stack layer (tp_btf/sock_send_length,
 * or fexit/kretprobe on tcp_sendmsg and udp(v6)_sendmsg where that
 * tracepoint is missing) sees the socket and the protocol's return value.
 * The syscall layer (tp_btf/sys_exit) sees the errno the application really
 * got, including errors injected by seccomp or an LSM before the socket
 * layer. The stack layer leaves a pending record for the current thread;
 * the syscall exit joins it, so one failed call is one event. Without the
 * syscall layer (--no-syscall-layer, half the cost on the success path),
 * the stack layer emits at once and reads the syscall's arguments itself.
 *
 * Retransmits, error reports and resets run in softirq or timer context,
 * where the task on the CPU is unrelated. They are attributed to the
 * socket's owner, recorded in socket local storage whenever the socket is
 * seen in process context (connect, a failed send, or the task_file
 * iterator that seeds sockets which existed before the session).
 *
 * The success path is hot: every send and every syscall on the machine
 * passes here. Both hooks return after one compare when nothing failed.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "lib/event.h"
#include "lib/config.h"
#include "lib/syscall.h"

const volatile struct config cfg = {};


char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

#ifndef SENDTRACE_LEGACY
/* BPF_F_CLONE: a socket accepted from an owned listener is born owned by
 * the listener's process, so its handshake (ESTABLISHED, with the ISNs that
 * join the two ends of a connection) is attributed before accept() runs. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct owner);
} owners SEC(".maps");

static __always_inline struct owner *owner_get(struct sock *sk, bool create)
{
	return bpf_sk_storage_get(&owners, sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
}

/* owner_reset starts a new socket's record; storage is born empty. */
static __always_inline struct owner *owner_reset(struct sock *sk)
{
	return owner_get(sk, true);
}

/* owner_forget drops a record that may have outlived its socket; socket
 * storage never does. */
static __always_inline void owner_forget(struct sock *sk)
{
}

static __always_inline __u64 sock_cookie(struct sock *sk)
{
	return bpf_get_socket_cookie(sk);
}

/* sock_cookie_any is the cookie of a socket reached through a pointer
 * the cookie helper refuses: the kernel's, when something already asked
 * for it, else 0. */
static __always_inline __u64 sock_cookie_any(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
}

static __always_inline struct task_struct *current_task(void)
{
	return bpf_get_current_task_btf();
}

static __always_inline struct pt_regs *task_regs(struct task_struct *task)
{
	return (struct pt_regs *)bpf_task_pt_regs(task);
}
#else
/* Kernels before 5.11 (5.10: Debian 11, Amazon Linux 2) give tracing
 * programs no socket local storage and no BTF task pointer, and before
 * 5.12 no socket cookie. The legacy object keeps owners in a hash map
 * keyed by the socket's address: a record outlives its socket until LRU
 * evicts it, so each TCP socket's birth (SYN_SENT, SYN_RECV, LISTEN) and a
 * UDP connect() start it afresh. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct owner);
} owners SEC(".maps");

static __always_inline struct owner *owner_get(struct sock *sk, bool create)
{
	__u64 key = (__u64)sk;
	struct owner *o = bpf_map_lookup_elem(&owners, &key);
	struct owner empty = {};

	if (o || !create)
		return o;
	bpf_map_update_elem(&owners, &key, &empty, BPF_NOEXIST);
	return bpf_map_lookup_elem(&owners, &key);
}

/* OWN_ID marks the ids this object makes: kernel cookies count up from 1
 * and never reach it. */
#define OWN_ID (1ULL << 63)

/* sock_addr_id is the socket's address, salted per session so that no
 * kernel address reaches a recording. Read as a number: the verifier
 * allows no arithmetic on the pointer itself. */
static __always_inline __u64 sock_addr_id(struct sock *sk)
{
	__u64 addr = 0;

	bpf_probe_read_kernel(&addr, sizeof(addr), &sk);
	return (addr ^ cfg.cookie_salt) | OWN_ID;
}

/* owner_reset starts a new socket's record. Its id is the kernel's
 * cookie when something already asked for it, else the salted address
 * mixed with the birth time: a socket allocated where a freed one was is
 * another connection. */
static __always_inline struct owner *owner_reset(struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct owner empty = {};

	empty.cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	if (!empty.cookie)
		empty.cookie = (sock_addr_id(sk) ^ (bpf_ktime_get_ns() << 12)) | OWN_ID;
	bpf_map_update_elem(&owners, &key, &empty, BPF_ANY);
	return bpf_map_lookup_elem(&owners, &key);
}

static __always_inline void owner_forget(struct sock *sk)
{
	__u64 key = (__u64)sk;

	bpf_map_delete_elem(&owners, &key);
}

/* A socket's id is the kernel's cookie when something asked for it
 * (ss -e, SO_COOKIE) before the socket was first seen: a program cannot
 * make one here. Else it is an id of this object's own (OWN_ID), which the
 * socket's record keeps for its life, even when something asks for the
 * kernel's cookie later. A record that names the socket by another kernel
 * cookie is a freed socket's, at the same address: the kernel's cookie
 * replaces it. */
static __always_inline __u64 sock_cookie(struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct owner *o = bpf_map_lookup_elem(&owners, &key);
	__u64 cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);

	if (o && o->cookie) {
		if (!cookie || o->cookie == cookie || (o->cookie & OWN_ID))
			return o->cookie;
		o->cookie = cookie;
		return cookie;
	}
	if (cookie)
		return cookie;
	return sock_addr_id(sk);
}

static __always_inline __u64 sock_cookie_any(struct sock *sk)
{
	return sock_cookie(sk);
}

static __always_inline struct task_struct *current_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

/* THREAD_SIZE of x86-64 and arm64 with 4 KiB pages and no KASAN, as
 * Debian builds them: the user registers sit at the top of the stack. */
#define LEGACY_THREAD_SIZE 16384
static __always_inline struct pt_regs *task_regs(struct task_struct *task)
{
	void *stack = BPF_CORE_READ(task, stack);

	if (!stack)
		return NULL;
	/* The running kernel's pt_regs, not vmlinux.h's (x86's). */
	return (struct pt_regs *)(stack + LEGACY_THREAD_SIZE - bpf_core_type_size(struct pt_regs));
}
#endif

#include "lib/sock.h"
#include "lib/filter.h"

/* Owners found where a socket is not a BTF pointer, so that they cannot
 * reach socket local storage there: a datagram socket's owner at
 * connect()'s exit (from its file descriptor), and every socket the
 * task_file iterator finds (kernels from 6.18.44 on refuse the socket that
 * bpf_sock_from_file() leads to as untrusted). The first asynchronous
 * event on the socket looks its owner up here by address and moves it
 * into storage. The socket's inode number guards against an address
 * reused by a later socket. Bounded by LRU: a socket evicted before its
 * first event is found again by the next seeding pass. */
struct addr_owner {
	__u64 ino;
	struct owner o;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct addr_owner);
} addr_owners SEC(".maps");

/* Owners of listening sockets by network namespace and port, for the
 * sockets accepted from them: a listener whose owner has not yet reached
 * its own storage cannot hand it down by cloning (BPF_F_CLONE), so a
 * socket born from it (SYN_RECV) takes it from here. Two listeners of
 * different processes on one port (SO_REUSEPORT) make the entry
 * ambiguous: no owner is given then. */
struct listener_key {
	__u32 netns;
	__u16 port;
	__u16 _pad;
};

struct listener_owner {
	struct owner o;
	__u32 seed_pass; /* the seeding pass that wrote the entry */
	__u8 ambiguous;
	__u8 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct listener_key);
	__type(value, struct listener_owner);
} listener_owners SEC(".maps");

/* Owners that user space found through /proc/PID/fd for OWNER_PENDING
 * events, by socket inode: an owner, or pid 0 for a socket no process the
 * filters want holds. The socket's next event moves it into storage, so
 * the kernel filters that socket itself from then on: one round trip per
 * socket, not per event. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct owner);
} proc_owners SEC(".maps");

/* A stack-layer failure waiting for its syscall exit, per thread. */
struct pending {
	__u64 sk;
	struct event e;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct pending);
} pending SEC(".maps");

/* The exact totals and the per-destination counters are shared by every
 * CPU and grow on demand (BPF_F_NO_PREALLOC): a per-CPU or preallocated map
 * would take max_entries x value x CPUs of kernel memory up front, well
 * over 100 MiB on a large machine. They are only written on a failure, a
 * retransmit, a drop, a reset or a socket's close, never for a successful
 * send, so the atomic adds cost nothing where sends succeed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct totals_key);
	__type(value, struct totals_val);
} totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct dst_key);
	__type(value, struct dst_val);
} dst_stats SEC(".maps");

/* Per-CPU counters that make loss visible. */
enum counter {
	COUNTER_LOST = 0,          /* ring buffer full: event dropped, totals kept */
	COUNTER_TOTALS_FULL = 1,   /* totals map full: totals inexact */
	COUNTER_UNOWNED = 2,       /* async event on a socket with no owner yet */
	COUNTER_PENDING_STALE = 3, /* stack record never joined by a syscall exit */
	COUNTER_DROPS_UNSTREAMED = 4, /* drop counted in the totals, not streamed (rate limit) */
	COUNTER_OWNER_PENDING = 5, /* event sent to user space to find its owner */
	COUNTER_MAX = 6,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Force the generated Go types. */
const struct event *unused_event __attribute__((unused));
const struct totals_key *unused_totals_key __attribute__((unused));
const struct totals_val *unused_totals_val __attribute__((unused));
const struct dst_key *unused_dst_key __attribute__((unused));
const struct dst_val *unused_dst_val __attribute__((unused));
const struct config *unused_config __attribute__((unused));
const struct owner *unused_owner __attribute__((unused));
/* The enums Go mirrors, generated by bpf2go -type rather than copied. */
const enum event_kind *unused_event_kind __attribute__((unused));
const enum event_layer *unused_event_layer __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));
const enum limits *unused_limits __attribute__((unused));
const enum retrans_kind *unused_retrans_kind __attribute__((unused));
const enum drop_dir *unused_drop_dir __attribute__((unused));
const enum owner_via *unused_owner_via __attribute__((unused));

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);

	if (v)
		*v += 1;
}

#define NET_XMIT_DROP 1
#define NET_XMIT_CN 2
#define ENOBUFS 105

/* totals_errno is the errno an event is counted under. A retransmit that
 * failed is counted under its failure: the kernel's -errno, or for a qdisc
 * drop (NET_XMIT_DROP) the ENOBUFS the kernel makes of it for senders. */
static __always_inline __s32 totals_errno(const struct event *e)
{
	if (e->kind != KIND_RETRANSMIT)
		return e->err;
	if (e->retrans_err < 0)
		return -e->retrans_err;
	if (e->retrans_err == NET_XMIT_DROP || e->retrans_err == NET_XMIT_CN)
		return ENOBUFS;
	return e->retrans_err;
}

/* new_value adds key with its first value; when it returns NULL, the
 * value is in the map. Another CPU may add the same key at the same moment:
 * the insert that loses returns the winner's value, for the caller to add
 * to, so no count is lost. It also returns NULL when the map is full, after
 * counting that in full (when full is not COUNTER_MAX). */
static __always_inline void *new_value(void *map, const void *key, const void *first, __u32 full)
{
	void *v;

	if (!bpf_map_update_elem(map, key, first, BPF_NOEXIST))
		return NULL;
	v = bpf_map_lookup_elem(map, key);
	if (!v && full < COUNTER_MAX)
		count(full);
	return v;
}

static __always_inline void totals_add(struct totals_key *k, __u64 events, __u64 bytes, __u64 segs)
{
	struct totals_val *v = bpf_map_lookup_elem(&totals, k);

	if (!v) {
		struct totals_val first = {.count = events, .bytes = bytes, .segs = segs};

		v = new_value(&totals, k, &first, COUNTER_TOTALS_FULL);
		if (!v)
			return;
	}
	/* An add of a known 0 is left out: the compiler would make it an
	 * atomic or, which kernels before 5.12 refuse. */
	if (events)
		__sync_fetch_and_add(&v->count, events);
	if (bytes)
		__sync_fetch_and_add(&v->bytes, bytes);
	if (segs)
		__sync_fetch_and_add(&v->segs, segs);
}

/* count_totals adds the event to the exact totals. */
static __always_inline void count_totals(const struct event *e)
{
	struct totals_key k = {
		.pid = e->owner_via == OWNER_PENDING ? PENDING_PID : e->pid,
		.kind = e->kind,
		.err = totals_errno(e),
		.family = e->family,
		.dport = e->dport,
	};

	__builtin_memcpy(k.daddr, e->daddr, sizeof(k.daddr));
	if (e->kind == KIND_RETRANSMIT)
		k.detail = e->retrans_kind;
	else if (e->kind == KIND_DROP)
		k.detail = e->drop_reason;
	totals_add(&k, 1, e->bytes, e->segs);
}

/* count_untraced adds retransmitted segments the kernel counted for a
 * socket (tcp_sock.total_retrans moves with TcpRetransSegs) that no
 * retransmit event carried, so the totals stay equal to the kernel's
 * counter: before 6.17 a retransmit that failed after it was counted
 * fires no event, and some kernels count a retransmit without firing the
 * tracepoint at all. They have no event of their own (count 0). */
static __always_inline void count_untraced(__u32 pid, struct sock *sk, __u32 segs)
{
	struct totals_key k = {.pid = pid, .kind = KIND_RETRANSMIT, .detail = RETRANS_UNTRACED};

	k.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	k.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (k.family == AF_INET)
		bpf_core_read(k.daddr, 4, &sk->__sk_common.skc_daddr);
	else
		bpf_core_read(k.daddr, 16, &sk->__sk_common.skc_v6_daddr);
	totals_add(&k, 0, 0, segs);
}

/* settle_untraced counts what total_retrans gained since the socket's
 * last retransmit event and moves the mark. */
static __always_inline void settle_untraced(struct sock *sk, struct owner *o)
{
	__u32 total;

	if (!o || !o->rtx_known)
		return;
	total = BPF_CORE_READ((struct tcp_sock *)sk, total_retrans);
	if (total != o->rtx_seen && (__s32)(total - o->rtx_seen) > 0)
		count_untraced(o->pid, sk, total - o->rtx_seen);
	o->rtx_seen = total;
}

/* Cgroups whose events have reached the reader, when events are batched
 * (wakeup_bytes): the first event of a cgroup wakes the reader at once, so
 * the cgroup is named while it exists; a short-lived container is often
 * gone within the batch. Bounded by LRU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} woken_cgroups SEC(".maps");

/* stream_flags tells the ring buffer whether this record wakes the reader.
 * With wakeup_bytes set, only a batch that large does (or a new cgroup): a
 * reader woken for every one of a thousand failures a second costs more
 * than the events. */
static __always_inline __u64 stream_flags(const struct event *e)
{
	__u64 cgroup = e->cgroup;
	__u8 seen = 1;

	if (!cfg.wakeup_bytes)
		return 0;
	if (!bpf_map_lookup_elem(&woken_cgroups, &cgroup)) {
		bpf_map_update_elem(&woken_cgroups, &cgroup, &seen, BPF_ANY);
		return BPF_RB_FORCE_WAKEUP;
	}
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + sizeof(*e) >= cfg.wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void stream(const struct event *e)
{
	if (bpf_ringbuf_output(&events, (void *)e, sizeof(*e), stream_flags(e)))
		count(COUNTER_LOST);
}

/* emit counts the event in the exact totals first, then streams it. A full
 * ring buffer loses the event but never the count. */
static __always_inline void emit(struct event *e)
{
	count_totals(e);
	stream(e);
}

static __always_inline void owner_from_current(struct event *e)
{
	__u64 id = bpf_get_current_pid_tgid();

	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->cgroup = bpf_get_current_cgroup_id();
	e->owner_known = 1;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* remember_owner records the current task as the socket's owner. Only BTF
 * socket pointers can reach socket local storage. */
static __always_inline void remember_owner(struct sock *sk, const struct event *e)
{
	struct owner *o = owner_get(sk, true);

	if (!o)
		return;
	o->pid = e->pid;
	o->tid = e->tid;
	o->cgroup = e->cgroup;
	__builtin_memcpy(o->comm, e->comm, sizeof(o->comm));
	o->cookie = e->cookie;
	o->interesting = 1;
	o->inherited = 0;
}

/* sock_ino is the inode number of the socket's file, 0 when it has none. */
static __always_inline __u64 sock_ino(struct sock *sk)
{
	struct socket *sock = BPF_CORE_READ(sk, sk_socket);

	if (!sock)
		return 0;
	return BPF_CORE_READ(sock, file, f_inode, i_ino);
}

/* take_owner gives a socket's storage an owner found outside it. */
static __always_inline void take_owner(struct owner *o, const struct owner *from)
{
	o->pid = from->pid;
	o->tid = from->tid;
	o->cgroup = from->cgroup;
	__builtin_memcpy(o->comm, from->comm, sizeof(o->comm));
	o->inherited = from->inherited;
	o->via_proc = from->via_proc;
	if (!o->rtx_known && from->rtx_known) {
		o->rtx_seen = from->rtx_seen;
		o->rtx_known = 1;
	}
}

/* addr_owner_of moves an owner found by address (addr_owners) into the
 * socket's local storage, o when it has some already. An owner inherited
 * from a listener gives way to the task found holding the socket (a
 * pre-forked worker, not the master the listener was seeded to); one seen
 * in process context is kept. */
static __always_inline struct owner *addr_owner_of(struct sock *sk, struct owner *o)
{
	__u64 key = (__u64)sk;
	struct addr_owner *a = bpf_map_lookup_elem(&addr_owners, &key);

	if (!a)
		return o;
	if (a->ino != sock_ino(sk)) {
		bpf_map_delete_elem(&addr_owners, &key);
		return o;
	}
	if (!o)
		o = owner_get(sk, true);
	if (o && (!o->pid || o->inherited))
		take_owner(o, &a->o);
	bpf_map_delete_elem(&addr_owners, &key);
	return o;
}

/* listener_key_of is where a listener's owner is kept for the sockets
 * accepted from it: its namespace and port, which an accepted socket
 * shares. */
static __always_inline struct listener_key listener_key_of(struct sock *sk)
{
	struct listener_key k = {};

	k.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	k.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	return k;
}

/* seed_pass numbers the seeding passes (set by user space before each):
 * a listener entry from an earlier pass is stale, not a second listener. */
volatile __u32 seed_pass;

/* seed_listener records a listening socket's owner for the sockets that
 * will be accepted from it. */
static __always_inline void seed_listener(struct sock *sk, const struct owner *o)
{
	struct listener_key k = listener_key_of(sk);
	struct listener_owner *l, nl = {};

	l = bpf_map_lookup_elem(&listener_owners, &k);
	if (l && l->seed_pass == seed_pass) {
		if (l->o.pid != o->pid)
			l->ambiguous = 1;
		return;
	}
	nl.o = *o;
	nl.seed_pass = seed_pass;
	bpf_map_update_elem(&listener_owners, &k, &nl, BPF_ANY);
}

/* listener_owner_of gives a socket just accepted (SYN_RECV) whose
 * listener had no storage to clone the owner seeded for that listener. */
static __always_inline struct owner *listener_owner_of(struct sock *sk)
{
	struct listener_key k = listener_key_of(sk);
	struct listener_owner *l;
	struct owner *o;

	l = bpf_map_lookup_elem(&listener_owners, &k);
	if (!l || l->ambiguous)
		return NULL;
	o = owner_get(sk, true);
	if (o && !o->pid)
		take_owner(o, &l->o);
	return o;
}

/* forget_listener drops a closing listener's entry, when it is the one
 * the entry names: a later listener on that port is another process's. */
static __always_inline void forget_listener(struct sock *sk)
{
	struct listener_key k;
	struct listener_owner *l;
	struct owner *o = owner_get(sk, false);

	if (!o)
		return;
	k = listener_key_of(sk);
	l = bpf_map_lookup_elem(&listener_owners, &k);
	if (l && !l->ambiguous && l->o.pid == o->pid)
		bpf_map_delete_elem(&listener_owners, &k);
}

/* proc_owner_of moves the answer user space wrote for a socket's inode
 * into the socket's storage. */
static __always_inline struct owner *proc_owner_of(struct sock *sk, __u64 ino)
{
	struct owner *found, *o;

	if (!ino)
		return NULL;
	found = bpf_map_lookup_elem(&proc_owners, &ino);
	if (!found)
		return NULL;
	o = owner_get(sk, true);
	if (o && !o->pid)
		take_owner(o, found);
	bpf_map_delete_elem(&proc_owners, &ino);
	return o;
}

/* owner_of fills the event from the socket's recorded owner and reports
 * whether the process filters let it through. The on-CPU task is never
 * used: in softirq and timer context it is unrelated to the socket. A
 * socket with no owner passes when no process filter is set; under one,
 * its event goes to user space to find the owner (OWNER_PENDING), unless
 * the socket has no file left to find it by. */
static __always_inline bool owner_of(struct sock *sk, struct event *e, bool mark)
{
	struct owner *o = owner_get(sk, false);
	__u64 ino;

	if (!o || o->inherited)
		o = addr_owner_of(sk, o);
	if (!o && has_process_filter()) {
		ino = sock_ino(sk);
		o = proc_owner_of(sk, ino);
		if (!o && ino) {
			count(COUNTER_UNOWNED);
			count(COUNTER_OWNER_PENDING);
			e->owner_via = OWNER_PENDING;
			e->sock_ino = ino;
			return true;
		}
	}
	if (!o) {
		count(COUNTER_UNOWNED);
		return !has_process_filter();
	}
	if (!match_process(o->pid, o->comm, o->cgroup))
		return false;
	e->pid = o->pid;
	e->tid = o->tid;
	e->cgroup = o->cgroup;
	e->owner_known = 1;
	e->owner_via = o->via_proc ? OWNER_VIA_PROC : OWNER_VIA_KERNEL;
	e->cookie = o->cookie;
	__builtin_memcpy(e->comm, o->comm, sizeof(e->comm));
	if (mark)
		o->interesting = 1;
	return true;
}

static __always_inline bool is_send_nr(__u64 nr)
{
	return nr == NR_write || nr == NR_writev || nr == NR_sendto ||
	       nr == NR_sendmsg || nr == NR_sendmmsg;
}

/* send_syscall_regs returns the user registers when the current task is
 * inside a send-family syscall, and that syscall's number. In-kernel
 * senders and io_uring have no such syscall: NULL. */
static __always_inline struct pt_regs *send_syscall_regs(__u64 *nr)
{
	struct task_struct *task = current_task();
	struct pt_regs *regs;

	if (BPF_CORE_READ(task, flags) & PF_KTHREAD)
		return NULL;
	regs = task_regs(task);
	if (!regs)
		return NULL;
	*nr = SYSCALL_NR(regs);
	return is_send_nr(*nr) ? regs : NULL;
}

struct user_iovec {
	__u64 base;
	__u64 len;
};

struct user_msghdr_x {
	__u64 name;
	__s32 namelen;
	__s32 _pad;
	__u64 iov;
	__u64 iovlen;
};

#define MAX_IOV 16

static __always_inline __u32 iov_size(__u64 iov, __u64 cnt)
{
	struct user_iovec v;
	__u64 sum = 0;

	for (int i = 0; i < MAX_IOV; i++) {
		if (i >= cnt)
			break;
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(iov + i * sizeof(v))))
			break;
		sum += v.len;
	}
	return sum > 0xffffffffULL ? 0xffffffffU : (__u32)sum;
}

/* dst_from_user fills the destination from the sockaddr the application
 * passed, for unconnected sockets whose own destination is empty. */
static __always_inline void dst_from_user(struct event *e, __u64 addr, __s32 len)
{
	struct {
		__u16 family;
		__u16 port;
		__u32 flowinfo_or_addr4;
		__u8 addr6[16];
	} sa = {};

	if (!addr || len < 8)
		return;
	if (bpf_probe_read_user(&sa, len < (__s32)sizeof(sa) ? 8 : sizeof(sa), (void *)addr))
		return;
	if (sa.family == AF_INET && e->family == AF_INET) {
		e->dport = bpf_ntohs(sa.port);
		__builtin_memcpy(e->daddr, &sa.flowinfo_or_addr4, 4);
	} else if (sa.family == AF_INET6 && e->family == AF_INET6 && len >= 24) {
		e->dport = bpf_ntohs(sa.port);
		__builtin_memcpy(e->daddr, sa.addr6, 16);
	}
}

static __always_inline bool dst_empty(const struct event *e)
{
	__u64 a[2];

	__builtin_memcpy(a, e->daddr, 16);
	return e->dport == 0 && a[0] == 0 && a[1] == 0;
}

/* syscall_args reads the requested size and, for unconnected sockets, the
 * destination from the send syscall's arguments. */
static __always_inline void syscall_args(struct event *e, struct pt_regs *regs, __u64 nr)
{
	struct user_msghdr_x m = {};
	__u64 msg;

	switch (nr) {
	case NR_write:
		e->bytes = SYSCALL_ARG3(regs);
		return;
	case NR_sendto:
		e->bytes = SYSCALL_ARG3(regs);
		if (dst_empty(e))
			dst_from_user(e, SYSCALL_ARG5(regs), SYSCALL_ARG6(regs));
		return;
	case NR_writev:
		e->bytes = iov_size(SYSCALL_ARG2(regs), SYSCALL_ARG3(regs));
		return;
	case NR_sendmsg:
	case NR_sendmmsg:
		/* sendmmsg: the first message is the one that failed. */
		msg = SYSCALL_ARG2(regs);
		if (bpf_probe_read_user(&m, sizeof(m), (void *)msg))
			return;
		e->bytes = iov_size(m.iov, m.iovlen);
		if (dst_empty(e))
			dst_from_user(e, m.name, m.namelen);
		return;
	}
}

/* count_send adds a successful send to the socket's counters. The first
 * send on a socket seen this way also records its owner: the caller is in
 * process context. */
static __always_inline void count_send(struct sock *sk, __u32 bytes)
{
	struct owner *o;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u64 id;

	if (family != AF_INET && family != AF_INET6)
		return;
	o = owner_get(sk, false);
	if (!o) {
		struct event e = {};

		id = bpf_get_current_pid_tgid();
		if ((id >> 32) == cfg.self_pid)
			return;
		o = owner_get(sk, true);
		if (!o)
			return;
		owner_from_current(&e);
		o->pid = e.pid;
		o->tid = e.tid;
		o->cgroup = e.cgroup;
		__builtin_memcpy(o->comm, e.comm, sizeof(o->comm));
		o->cookie = sock_cookie(sk);
	}
	o->sends++;
	o->send_bytes += bytes;
}

/* stack_error handles a failed protocol sendmsg. size is 0 when the hook
 * does not know it; the syscall's arguments fill it in. Inside a send
 * syscall, with the syscall layer attached, the failure waits for the
 * syscall's exit, which joins it with the errno the application got.
 * Otherwise (io_uring, kernel senders, or --no-syscall-layer) it is
 * emitted here, with the syscall and its arguments read from the
 * registers when there is one. */
static __always_inline int stack_error(struct sock *sk, __s32 err, __u32 size, bool btf_sk)
{
	struct pending p = {};
	struct event *e = &p.e;
	struct pt_regs *regs;
	__u64 nr = 0;
	__u32 tid;

	owner_from_current(e);
	if (e->pid == cfg.self_pid)
		return 0;
	if (!match_process(e->pid, e->comm, e->cgroup))
		return 0;
	fill_sock(e, sk);
	e->ts_ns = bpf_ktime_get_ns();
	e->kind = KIND_SEND_ERROR;
	e->stack_err = err;
	e->bytes = size;
	if (btf_sk) {
		e->cookie = sock_cookie(sk);
		remember_owner(sk, e);
	} else {
		e->cookie = sock_cookie_any(sk);
	}

	regs = send_syscall_regs(&nr);
	if (regs && cfg.syscall_layer) {
		p.sk = (__u64)sk;
		tid = e->tid;
		bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
		return 0;
	}
	e->layer = LAYER_STACK;
	e->err = err;
	if (regs) {
		e->syscall_nr = nr;
		syscall_args(e, regs, nr);
	}
	if (match_errno(err) && match_dst(e))
		emit(e);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(send_length, struct sock *sk, int ret, int flags)
{
	if (ret >= 0) {
		if (cfg.count_sends)
			count_send(sk, ret);
		return 0;
	}
	return stack_error(sk, -ret, 0, true);
}

SEC("fexit/tcp_sendmsg")
int BPF_PROG(fexit_tcp_sendmsg, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	if (ret >= 0) {
		if (cfg.count_sends)
			count_send(sk, ret);
		return 0;
	}
	return stack_error(sk, -ret, size, true);
}

SEC("fexit/udp_sendmsg")
int BPF_PROG(fexit_udp_sendmsg, struct sock *sk, struct msghdr *msg, size_t len, int ret)
{
	if (ret >= 0) {
		if (cfg.count_sends)
			count_send(sk, ret);
		return 0;
	}
	return stack_error(sk, -ret, len, true);
}

SEC("fexit/udpv6_sendmsg")
int BPF_PROG(fexit_udpv6_sendmsg, struct sock *sk, struct msghdr *msg, size_t len, int ret)
{
	if (ret >= 0) {
		if (cfg.count_sends)
			count_send(sk, ret);
		return 0;
	}
	return stack_error(sk, -ret, len, true);
}

/* kretprobe twins, for kernels that have neither the tracepoint nor fexit.
 * The entry probe keeps the socket and size for the return probe. */
struct send_args {
	__u64 sk;
	__u64 size;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct send_args);
} send_args SEC(".maps");

static __always_inline int kprobe_send_entry(struct sock *sk, __u64 size)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct send_args a = {.sk = (__u64)sk, .size = size};

	bpf_map_update_elem(&send_args, &tid, &a, BPF_ANY);
	return 0;
}

static __always_inline int kretprobe_send_return(int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct send_args *a = bpf_map_lookup_elem(&send_args, &tid);
	struct sock *sk;
	__u32 size;

	if (!a)
		return 0;
	sk = (struct sock *)a->sk;
	size = a->size;
	bpf_map_delete_elem(&send_args, &tid);
	if (ret >= 0)
		return 0;
	return stack_error(sk, -ret, size, false);
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(kprobe_tcp_sendmsg, struct sock *sk, struct msghdr *msg, size_t size)
{
	return kprobe_send_entry(sk, size);
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(kretprobe_tcp_sendmsg, int ret)
{
	return kretprobe_send_return(ret);
}

SEC("kprobe/udp_sendmsg")
int BPF_KPROBE(kprobe_udp_sendmsg, struct sock *sk, struct msghdr *msg, size_t len)
{
	return kprobe_send_entry(sk, len);
}

SEC("kretprobe/udp_sendmsg")
int BPF_KRETPROBE(kretprobe_udp_sendmsg, int ret)
{
	return kretprobe_send_return(ret);
}

SEC("kprobe/udpv6_sendmsg")
int BPF_KPROBE(kprobe_udpv6_sendmsg, struct sock *sk, struct msghdr *msg, size_t len)
{
	return kprobe_send_entry(sk, len);
}

SEC("kretprobe/udpv6_sendmsg")
int BPF_KRETPROBE(kretprobe_udpv6_sendmsg, int ret)
{
	return kretprobe_send_return(ret);
}

/* Syscall layer. */

static __always_inline void send_exit(struct pt_regs *regs, __u64 nr, __s32 err)
{
	struct pending p_local = {};
	struct event *e = &p_local.e;
	struct pending *p;
	struct sock *sk;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;

	if ((id >> 32) == cfg.self_pid)
		return;
	sk = sock_from_fd(SYSCALL_ARG1(regs));
	p = bpf_map_lookup_elem(&pending, &tid);
	if (p) {
		__builtin_memcpy(&p_local, p, sizeof(p_local));
		bpf_map_delete_elem(&pending, &tid);
		if (p_local.sk != (__u64)sk) {
			/* A stack record this exit does not own (sendmmsg that
			 * failed after sending some): report it on its own. */
			count(COUNTER_PENDING_STALE);
			e->layer = LAYER_STACK;
			e->err = e->stack_err;
			if (match_errno(e->err) && match_dst(e))
				emit(e);
			__builtin_memset(&p_local, 0, sizeof(p_local));
		}
	}
	if (!sk)
		return;
	if (e->kind) {
		e->layer = LAYER_BOTH;
	} else {
		owner_from_current(e);
		if (!match_process(e->pid, e->comm, e->cgroup))
			return;
		fill_sock(e, sk);
		e->cookie = sock_cookie_any(sk);
		e->ts_ns = bpf_ktime_get_ns();
		e->kind = KIND_SEND_ERROR;
		e->layer = LAYER_SYSCALL;
	}
	e->err = err;
	e->syscall_nr = nr;
	syscall_args(e, regs, nr);
	if (!match_errno(err) || !match_dst(e))
		return;
	emit(e);
}

/* connect_exit records the owner of a datagram socket that connect()
 * just connected: UDP has no state change in process context, and its
 * first event may be an ICMP error report in softirq. TCP's owner is
 * recorded at SYN_SENT. */
static __always_inline void connect_exit(struct pt_regs *regs)
{
	struct addr_owner c = {};
	__u64 id = bpf_get_current_pid_tgid();
	struct sock *sk;
	__u16 family;
	__u64 key;

	if ((id >> 32) == cfg.self_pid)
		return;
	sk = sock_from_fd(SYSCALL_ARG1(regs));
	if (!sk || BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP)
		return;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return;
	c.ino = sock_ino(sk);
	c.o.pid = id >> 32;
	c.o.tid = (__u32)id;
	c.o.cgroup = bpf_get_current_cgroup_id();
	bpf_get_current_comm(c.o.comm, sizeof(c.o.comm));
	key = (__u64)sk;
	bpf_map_update_elem(&addr_owners, &key, &c, BPF_ANY);
	owner_forget(sk);
}

/* The liveness probe: user space sets probe_tid to one of its threads,
 * makes a send fail there on purpose, and reads probe_seen to learn that
 * this program really runs (an attached tp_btf/sys_exit has been seen
 * never to run in some kernels). Checked on the failure path only. */
volatile __u32 probe_tid;
volatile __u32 probe_seen;

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	__u64 nr;

	/* A successful send returns the bytes it sent: one compare. */
	if (ret > 0)
		return 0;
	/* A BTF pointer: a plain load, no helper call, for every syscall
	 * that returns 0. */
	nr = SYSCALL_NR_BTF(regs);
	if (ret == 0) {
		if (nr == NR_connect)
			connect_exit(regs);
		return 0;
	}
	if (!is_send_nr(nr))
		return 0;
	if ((__u32)bpf_get_current_pid_tgid() == probe_tid) {
		probe_seen++;
		return 0;
	}
	send_exit(regs, nr, -ret);
	return 0;
}

/* Async events. */

/* disconnect_report says whether an error report is the second one a
 * failed connect() makes: having taken the error, __inet_stream_connect
 * resets the socket with tcp_disconnect, which clears the destination
 * port and reports again with sk_err already 0. No error and no
 * destination: counted, every refused connect would count twice, once
 * under ADDR:0. */
static __always_inline bool disconnect_report(const struct event *e, __s32 err)
{
	__u64 hi, lo;

	if (err || e->dport)
		return false;
	__builtin_memcpy(&hi, e->daddr, 8);
	__builtin_memcpy(&lo, e->daddr + 8, 8);
	return hi | lo;
}

static __always_inline int async_event(struct sock *sk, __u8 kind, __s32 err)
{
	struct event e = {};

	if (!sk)
		return 0;
	if (!owner_of(sk, &e, true))
		return 0;
	fill_sock(&e, sk);
	if (kind == KIND_ERROR_REPORT && disconnect_report(&e, err))
		return 0;
	if (!match_dst(&e) || !match_errno(err))
		return 0;
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = kind;
	e.err = err;
	e.cookie = sock_cookie(sk);
	emit(&e);
	return 0;
}

/* Retransmits. */

#define TCP_CA_Open 0
#define TCP_CA_CWR 2
#define TCP_CA_Loss 4
#define ICSK_TIME_LOSS_PROBE 5
#define TCPHDR_SYN 0x02

#define EINVAL 22
#define EAGAIN 11
#define ENOMEM 12
#define EBUSY 16
#define EHOSTUNREACH 113

/* retrans_kind_of tells the kinds apart the way the kernel's counters do:
 * a SYN (TCPSynRetrans) by its flag; CA_Loss is the recovery a timeout
 * started (TCPTimeouts, then TCPSlowStartRetrans); a tail loss probe runs
 * from its own timer, armed only in Open or CWR (a fast retransmit can
 * run while that timer is still pending, so the timer alone is not
 * enough); everything else is recovery from ACKs (TCPFastRetrans). */
static __always_inline __u8 retrans_kind_of(struct sock *sk, const char *cb)
{
	struct inet_connection_sock *icsk = (struct inet_connection_sock *)sk;
	__u16 flags = 0;
	__u8 ca, pending;

	/* tcp_flags is a __u8 before 6.18 and a __u16 since: read what the
	 * running kernel has. */
	bpf_probe_read_kernel(&flags, bpf_core_field_size(struct tcp_skb_cb, tcp_flags) & 3,
			      cb + bpf_core_field_offset(struct tcp_skb_cb, tcp_flags));
	if (flags & TCPHDR_SYN)
		return RETRANS_SYN;
	ca = BPF_CORE_READ_BITFIELD_PROBED(icsk, icsk_ca_state);
	if (ca == TCP_CA_Loss)
		return RETRANS_RTO;
	pending = BPF_CORE_READ(icsk, icsk_pending);
	if (pending == ICSK_TIME_LOSS_PROBE && (ca == TCP_CA_Open || ca == TCP_CA_CWR))
		return RETRANS_TLP;
	return RETRANS_FAST;
}

/* counted_segs says how many of this retransmit's segments the kernel
 * added to TcpRetransSegs, and counts the ones it added since the last
 * event without one (count_untraced). From 6.17 the tracepoint also fires
 * for attempts that failed. __tcp_retransmit_skb counts after its early
 * exits (-EBUSY: the previous copy is still in a host queue; -EAGAIN:
 * outside the window; -ENOMEM; -EINVAL; -EHOSTUNREACH from rebuild_header)
 * and before it hands the segment to IP, whose failures (a netfilter
 * -EPERM, a qdisc's NET_XMIT_DROP, -ENOBUFS, no route) were counted.
 * -ENOMEM, -EINVAL and -EHOSTUNREACH can come from either side: the
 * socket's own total_retrans, which moves with the counter, settles them. */
static __always_inline __u32 counted_segs(struct sock *sk, struct owner *o, __s32 err, __u32 segs)
{
	bool either = err == -ENOMEM || err == -EINVAL || err == -EHOSTUNREACH;
	bool counted = !err || (err != -EBUSY && err != -EAGAIN && !either);
	__u32 total, added;

	if (!o)
		return counted ? segs : 0;
	total = BPF_CORE_READ((struct tcp_sock *)sk, total_retrans);
	if (!o->rtx_known) {
		o->rtx_seen = total;
		o->rtx_known = 1;
		return counted ? segs : 0;
	}
	added = total - o->rtx_seen;
	if (either)
		counted = added >= segs;
	if (!counted)
		segs = 0;
	o->rtx_seen = total;
	if ((__s32)added > (__s32)segs)
		count_untraced(o->pid, sk, added - segs);
	return segs;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(retransmit, struct sock *sk, struct sk_buff *skb)
{
	struct event e = {};
	const char *cb;
	__u16 segs = 0;
	__s32 err = 0;

	if (cfg.retransmit_has_err)
		err = (__s32)ctx[2];
	if (!owner_of(sk, &e, true))
		return 0;
	fill_sock(&e, sk);
	if (!match_dst(&e))
		return 0;
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = KIND_RETRANSMIT;
	e.cookie = sock_cookie(sk);
	e.bytes = BPF_CORE_READ(skb, len);
	cb = (const char *)skb + bpf_core_field_offset(struct sk_buff, cb);
	bpf_probe_read_kernel(&e.seq, sizeof(e.seq), cb + bpf_core_field_offset(struct tcp_skb_cb, seq));
	/* TCP_SKB_CB(skb)->tcp_gso_segs is what the kernel added to the
	 * counters; skb_shinfo(skb)->gso_segs can be stale here. */
	bpf_probe_read_kernel(&segs, sizeof(segs), cb + bpf_core_field_offset(struct tcp_skb_cb, tcp_gso_segs));
	e.retrans_kind = retrans_kind_of(sk, cb);
	e.retrans_err = err;
	e.segs = counted_segs(sk, owner_get(sk, false), err, segs);
	emit(&e);
	return 0;
}

/* A listener's SYN-ACK retransmit goes through tcp_rtx_synack, never
 * tcp_retransmit_skb. The tracepoint fires only when it was sent, which is
 * when the kernel adds 1 to TcpRetransSegs and TCPSynRetrans. The
 * connection has no socket of its own yet: the event belongs to the
 * listener (its owner and cookie) and carries the request's addresses. */
SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(retransmit_synack, struct sock *sk, struct request_sock *req)
{
	struct event e = {};

	if (!owner_of(sk, &e, true))
		return 0;
	if (!fill_addrs(&e, &req->__req_common))
		return 0;
	if (!match_dst(&e))
		return 0;
	e.state = TCP_SYN_RECV;
	e.protocol = IPPROTO_TCP;
	e.since_send_j = JIFFIES_UNKNOWN;
	e.since_recv_j = JIFFIES_UNKNOWN;
	e.retransmits = BPF_CORE_READ(req, num_retrans);
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = KIND_RETRANSMIT;
	e.cookie = sock_cookie(sk);
	e.retrans_kind = RETRANS_SYNACK;
	e.segs = 1;
	/* A passive Fast Open socket's SYN-ACK also adds to its own
	 * total_retrans: already counted here, not untraced. */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_LISTEN) {
		struct owner *o = owner_get(sk, false);

		if (o)
			o->rtx_seen++;
	}
	emit(&e);
	return 0;
}

SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(error_report, struct sock *sk)
{
	/* A woken reader may already have cleared sk_err; 0 is then reported
	 * as it is rather than guessed. */
	return async_event(sk, KIND_ERROR_REPORT, BPF_CORE_READ(sk, sk_err));
}

/* Before 5.14 there is no error-report tracepoint: TCP and UDP call
 * sk->sk_error_report(sk), which is sock_def_error_report for an inet
 * socket. fentry where the kernel has it (x86-64 from 5.5), a kprobe
 * where it has not (arm64 before 6.0). */
static __always_inline int inet_error_report(struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family != AF_INET && family != AF_INET6)
		return 0;
	return async_event(sk, KIND_ERROR_REPORT, BPF_CORE_READ(sk, sk_err));
}

SEC("fentry/sock_def_error_report")
int BPF_PROG(fentry_error_report, struct sock *sk)
{
	return inet_error_report(sk);
}

SEC("kprobe/sock_def_error_report")
int BPF_KPROBE(kprobe_error_report, struct sock *sk)
{
	return inet_error_report(sk);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(receive_reset, struct sock *sk)
{
	return async_event(sk, KIND_RECEIVE_RESET, 0);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(send_reset, struct sock *sk, struct sk_buff *skb)
{
	struct event e = {};

	if (!sk)
		return 0;
	if (!owner_of(sk, &e, true))
		return 0;
	fill_sock(&e, sk);
	if (!match_dst(&e))
		return 0;
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = KIND_SEND_RESET;
	e.cookie = sock_cookie(sk);
	if (cfg.send_reset_has_reason)
		e.reset_reason = (__u32)ctx[2];
	emit(&e);
	return 0;
}

/* Drops on this host. kfree_skb fires only when a packet is dropped
 * (normal frees go to consume_skb), so nothing here runs for a packet that
 * was delivered. A packet on its way out carries its sending socket in
 * skb->sk up to the device, which makes a drop in netfilter, a qdisc, the
 * routing or the neighbour layer attributable to the socket's owner. From
 * 6.12 the kernel also names the receiving socket (rx_sk) of a packet
 * dropped on its way in. */

#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12
#define SKB_DROP_WINDOW_NS 1000000000ULL

/* drop_budget limits the drop events streamed per socket and second, so a
 * drop storm cannot crowd the other events out of the ring buffer; the
 * totals count every drop. */
static __always_inline bool drop_budget(struct sock *sk, __u64 now)
{
	struct owner *o;

	if (!cfg.drop_limit)
		return true;
	o = owner_get(sk, false);
	if (!o)
		return true;
	if (now - o->drop_window >= SKB_DROP_WINDOW_NS) {
		o->drop_window = now;
		o->drop_streamed = 0;
	}
	if (o->drop_streamed >= cfg.drop_limit)
		return false;
	o->drop_streamed++;
	return true;
}

struct l4_ports {
	__be16 source;
	__be16 dest;
	__be32 seq; /* TCP only */
};

/* tcp_header_only: the TCP segment skb holds no payload, only its header
 * (a FIN or an ACK), as TCP sees it on the way in, where skb->data is the
 * TCP header. */
static __always_inline bool tcp_header_only(struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u8 doff;

	if (th == 0xffff || bpf_probe_read_kernel(&doff, sizeof(doff), head + th + 12))
		return false;
	return BPF_CORE_READ(skb, len) <= (__u32)(doff >> 4) * 4;
}

static __always_inline int drop(struct sk_buff *skb, void *location, __u32 reason, struct sock *rx_sk)
{
	struct skb_shared_info *shinfo;
	struct event e = {};
	struct l4_ports l4 = {};
	struct net_device *dev;
	struct sock *sk;
	__u16 th, segs;
	__u8 state;
	unsigned char *head;

	if (reason == 0 || reason == cfg.drop_consumed)
		return 0;
	/* A packet with no bytes left has had its headers consumed: TCP
	 * already took it in (a FIN or ACK purged from a closing socket's
	 * queue). Freeing it loses nothing. */
	if (!BPF_CORE_READ(skb, len))
		return 0;
	e.drop_dir = DROP_IN;
	sk = rx_sk;
	if (!sk) {
		sk = skb->sk;
		e.drop_dir = DROP_OUT;
	}
	if (!sk)
		return 0;
	/* Request and time-wait socks (SYN-ACKs, their resets) have no owner
	 * and none of a full socket's fields. */
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (state == TCP_NEW_SYN_RECV || state == TCP_TIME_WAIT)
		return 0;
	/* A FIN or ACK that meets its socket already closed, as a connection
	 * is torn down, loses nothing either: the kernel found the socket a
	 * moment before it closed, and drops the segment as TCP_CLOSE. */
	if (reason == cfg.drop_tcp_close && state == TCP_CLOSE && tcp_header_only(skb))
		return 0;
	e.protocol = BPF_CORE_READ(sk, sk_protocol);
	if (e.protocol != IPPROTO_TCP && e.protocol != IPPROTO_UDP)
		return 0;
	if (!owner_of(sk, &e, true))
		return 0;
	fill_sock(&e, sk);
	if (e.family != AF_INET && e.family != AF_INET6)
		return 0;
	if (!match_dst(&e))
		return 0;
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = KIND_DROP;
	/* skb->sk is an RCU pointer the cookie helper refuses: the cookie
	 * comes from the owner record, or from the socket when an earlier
	 * event already made one. */
	if (!e.cookie)
		e.cookie = sock_cookie_any(sk);
	e.drop_reason = reason;
	e.drop_location = (__u64)location;
	e.bytes = BPF_CORE_READ(skb, len);
	head = BPF_CORE_READ(skb, head);
	shinfo = (struct skb_shared_info *)(head + BPF_CORE_READ(skb, end));
	segs = BPF_CORE_READ(shinfo, gso_segs);
	e.segs = segs ? segs : 1;
	dev = BPF_CORE_READ(skb, dev);
	if (dev)
		bpf_probe_read_kernel_str(e.drop_dev, sizeof(e.drop_dev), &dev->name);
	/* The transport header says which way the packet went (skb->sk can
	 * also be the receiving socket, after early demux) and, for TCP,
	 * which segment it was. */
	th = BPF_CORE_READ(skb, transport_header);
	if (th != 0xffff && !bpf_probe_read_kernel(&l4, sizeof(l4), head + th)) {
		if (bpf_ntohs(l4.dest) == e.sport && bpf_ntohs(l4.source) == e.dport)
			e.drop_dir = DROP_IN;
		if (e.protocol == IPPROTO_TCP)
			e.seq = bpf_ntohl(l4.seq);
	}
	count_totals(&e);
	if (drop_budget(sk, e.ts_ns))
		stream(&e);
	else
		count(COUNTER_DROPS_UNSTREAMED);
	return 0;
}

/* 6.12+: the receiving socket is named. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(drop_rx_sk, struct sk_buff *skb, void *location, enum skb_drop_reason reason, struct sock *rx_sk)
{
	return drop(skb, location, reason, rx_sk);
}

/* 5.17 to 6.11: drops of packets that still carry their socket. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(drop_skb_sk, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return drop(skb, location, reason, NULL);
}

static __always_inline void count_dst(struct sock *sk, __u32 pid, struct owner *o, bool tcp)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct dst_key k = {.pid = pid};
	struct dst_val *v, nv = {};

	k.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	k.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (k.family == AF_INET)
		bpf_core_read(k.daddr, 4, &sk->__sk_common.skc_daddr);
	else if (k.family == AF_INET6)
		bpf_core_read(k.daddr, 16, &sk->__sk_common.skc_v6_daddr);
	else
		return;
	if (!match_dst_addr(k.family, k.daddr, k.dport))
		return;
	nv.conns = 1;
	if (o) {
		nv.sends = o->sends;
		nv.send_bytes = o->send_bytes;
	}
	if (tcp) {
		settle_untraced(sk, o);
		nv.bytes_sent = BPF_CORE_READ(tp, bytes_sent);
		nv.data_segs_out = BPF_CORE_READ(tp, data_segs_out);
		nv.retrans_segs = BPF_CORE_READ(tp, total_retrans);
		nv.bytes_retrans = BPF_CORE_READ(tp, bytes_retrans);
	}
	if (!cfg.keep_traffic)
		return;
	v = bpf_map_lookup_elem(&dst_stats, &k);
	if (!v) {
		v = new_value(&dst_stats, &k, &nv, COUNTER_MAX);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->sends, nv.sends);
	__sync_fetch_and_add(&v->send_bytes, nv.send_bytes);
	__sync_fetch_and_add(&v->conns, nv.conns);
	__sync_fetch_and_add(&v->bytes_sent, nv.bytes_sent);
	__sync_fetch_and_add(&v->data_segs_out, nv.data_segs_out);
	__sync_fetch_and_add(&v->retrans_segs, nv.retrans_segs);
	__sync_fetch_and_add(&v->bytes_retrans, nv.bytes_retrans);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(set_state, struct sock *sk, int oldstate, int newstate)
{
	struct owner *o;
	struct event e = {};

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN) {
		/* connect() and listen() run in process context: the current
		 * task owns the socket. */
		o = owner_reset(sk);
		if (!o)
			return 0;
		owner_from_current(&e);
		o->pid = e.pid;
		o->tid = e.tid;
		o->cgroup = e.cgroup;
		__builtin_memcpy(o->comm, e.comm, sizeof(o->comm));
		/* Kept for hooks that reach the socket through a pointer the
		 * cookie helper refuses (skb->sk in kfree_skb). */
		o->cookie = sock_cookie(sk);
		/* A socket that connects has retransmitted nothing yet. */
		o->rtx_seen = BPF_CORE_READ((struct tcp_sock *)sk, total_retrans);
		o->rtx_known = 1;
		if (newstate == TCP_LISTEN) {
			/* A listener opened during the session owns the
			 * sockets accepted from it, as a seeded one does:
			 * cloned with its storage, or (legacy object) taken
			 * from listener_owners at their birth. */
			o->inherited = 1;
			seed_listener(sk, o);
			return 0;
		}
		o->inherited = 0;
		if (e.pid == cfg.self_pid || !cfg.all_state_changes ||
		    !match_process(e.pid, e.comm, e.cgroup))
			return 0;
	} else {
		/* A socket born accepted starts afresh; a listener that
		 * closes gives its port back. */
		if (oldstate == TCP_LISTEN && newstate == TCP_CLOSE)
			forget_listener(sk);
		if (oldstate == TCP_LISTEN)
			owner_forget(sk);
		o = owner_get(sk, false);
		if (!o && newstate == TCP_SYN_RECV)
			o = listener_owner_of(sk);
		/* An accepted socket is born with a copy of its listener's
		 * record (BPF_F_CLONE): it starts its own cookie, retransmit
		 * baseline (its total_retrans counts the SYN-ACK retransmits,
		 * already the listener's events) and drop budget. */
		if (o && o->inherited && newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV) {
			o->cookie = sock_cookie(sk);
			o->rtx_seen = BPF_CORE_READ((struct tcp_sock *)sk, total_retrans);
			o->rtx_known = 1;
			o->drop_window = 0;
			o->drop_streamed = 0;
		}
		if (newstate == TCP_CLOSE && oldstate != TCP_SYN_SENT) {
			if (!o) {
				if (!has_process_filter())
					count_dst(sk, 0, NULL, true);
			} else if (!o->dst_counted && match_process(o->pid, o->comm, o->cgroup)) {
				o->dst_counted = 1;
				count_dst(sk, o->pid, o, true);
			}
		}
		if (!o || !(o->interesting || cfg.all_state_changes))
			return 0;
		if (!owner_of(sk, &e, false))
			return 0;
	}
	fill_sock(&e, sk);
	if (!match_dst(&e))
		return 0;
	e.ts_ns = bpf_ktime_get_ns();
	e.kind = KIND_STATE_CHANGE;
	e.state = newstate;
	e.old_state = oldstate;
	e.cookie = sock_cookie(sk);
	/* tcp_sock keeps no ISN. Entering ESTABLISHED, from SYN_SENT or
	 * SYN_RECV, the handshake's ACK has been taken and no data yet: each
	 * side's first byte is its ISN + 1 (the SYN takes one number). */
	if (newstate == TCP_ESTABLISHED) {
		e.snd_isn = e.snd_una - 1;
		e.rcv_isn = e.rcv_nxt - 1;
	}
	emit(&e);
	return 0;
}

/* Iterators, run from Go. */

/* seed_owners finds the owners of sockets that existed before the session,
 * or were accepted since, in the tasks that hold them. The socket is
 * reached through plain kernel addresses, which cannot reach socket local
 * storage: the owner waits in addr_owners for the socket's first
 * asynchronous event (addr_owner_of), and a listener's also in
 * listener_owners for the sockets accepted from it. Only owners the
 * process filters want are seeded. */
SEC("iter/task_file")
int seed_owners(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct addr_owner a = {}, *old;
	struct sock *sk;
	__u16 family;
	__u64 key;

	if (!task || !file)
		return 0;
	sk = sock_of_file(file);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	a.o.pid = task->tgid;
	a.o.tid = task->pid;
	a.o.cgroup = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	bpf_probe_read_kernel_str(a.o.comm, sizeof(a.o.comm), task->comm);
	if (!match_process(a.o.pid, a.o.comm, a.o.cgroup))
		return 0;
	a.ino = BPF_CORE_READ(file, f_inode, i_ino);
	key = (__u64)sk;
	/* The first task found holding the socket keeps it. */
	old = bpf_map_lookup_elem(&addr_owners, &key);
	if (old && old->ino == a.ino)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP && BPF_CORE_READ(sk, sk_type) == SOCK_STREAM) {
		/* Retransmits from here on are the session's to count. */
		a.o.rtx_seen = BPF_CORE_READ((struct tcp_sock *)sk, total_retrans);
		a.o.rtx_known = 1;
		if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_LISTEN) {
			/* Cloned into every socket accepted from it. */
			a.o.inherited = 1;
			seed_listener(sk, &a.o);
		}
	}
	bpf_map_update_elem(&addr_owners, &key, &a, BPF_ANY);
	return 0;
}

/* open_tcp_counters adds the counters of TCP sockets still open at the end
 * of a session to the per-destination totals. */
SEC("iter/tcp")
int open_tcp_counters(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;
	struct owner *o;
	int state;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	state = tp->inet_conn.icsk_inet.sk.__sk_common.skc_state;
	if (state == TCP_LISTEN || state == TCP_SYN_SENT || state == TCP_CLOSE)
		return 0;
	o = owner_get((struct sock *)tp, false);
	if (!o) {
		if (!has_process_filter())
			count_dst((struct sock *)tp, 0, NULL, true);
		return 0;
	}
	if (o->dst_counted || !match_process(o->pid, o->comm, o->cgroup))
		return 0;
	count_dst((struct sock *)tp, o->pid, o, true);
	return 0;
}

/* open_udp_counters adds the send counters of UDP sockets still open at
 * the end of a session. UDP keeps no counters of its own, so only sockets
 * counted by count_send appear. */
SEC("iter/udp")
int open_udp_counters(struct bpf_iter__udp *ctx)
{
	struct udp_sock *up = ctx->udp_sk;
	struct owner *o;

	if (!up)
		return 0;
	o = owner_get((struct sock *)up, false);
	if (!o || !o->sends || !match_process(o->pid, o->comm, o->cgroup))
		return 0;
	count_dst((struct sock *)up, o->pid, o, false);
	return 0;
}
