/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* In-kernel filters. Each returns true when the filter is unset, so an
 * unfiltered session pays one constant compare, pruned by the verifier. */
#pragma once

static __always_inline bool comm_eq(const char *a, const volatile char *b)
{
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (a[i] != b[i])
			return false;
		if (!a[i])
			return true;
	}
	return true;
}

static __always_inline bool has_process_filter(void)
{
	return cfg.npids || cfg.ncomms || cfg.ncgroups;
}

static __always_inline bool match_process(__u32 pid, const char *comm, __u64 cgroup)
{
	bool ok;

	if (cfg.npids) {
		ok = false;
		for (int i = 0; i < MAX_PIDS; i++)
			if (i < cfg.npids && cfg.pids[i] == pid)
				ok = true;
		if (!ok)
			return false;
	}
	if (cfg.ncomms) {
		ok = false;
		for (int i = 0; i < MAX_COMMS; i++)
			if (i < cfg.ncomms && comm_eq(comm, cfg.comms[i]))
				ok = true;
		if (!ok)
			return false;
	}
	if (cfg.ncgroups) {
		ok = false;
		for (int i = 0; i < MAX_CGROUPS; i++)
			if (i < cfg.ncgroups && cfg.cgroups[i] == cgroup)
				ok = true;
		if (!ok)
			return false;
	}
	return true;
}

static __always_inline bool prefix_eq(const __u8 *a, const volatile __u8 *b, __u32 bits)
{
	for (int i = 0; i < 16; i++) {
		__u32 left = bits > (__u32)i * 8 ? bits - (__u32)i * 8 : 0;
		__u8 mask;

		if (!left)
			return true;
		mask = left >= 8 ? 0xff : (__u8)(0xff << (8 - left));
		if ((a[i] & mask) != (b[i] & mask))
			return false;
	}
	return true;
}

static const __u8 v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static __always_inline bool match_dst_addr(__u16 family, const __u8 *addr, __u16 dport)
{
	bool ok;

	if (cfg.nports) {
		ok = false;
		for (int i = 0; i < MAX_PORTS; i++)
			if (i < cfg.nports && cfg.ports[i] == dport)
				ok = true;
		if (!ok)
			return false;
	}
	if (!cfg.ncidrs)
		return true;
	/* An IPv6 socket talking IPv4 matches IPv4 prefixes. */
	if (family == AF_INET6 && !__builtin_memcmp(addr, v4mapped_prefix, 12)) {
		family = AF_INET;
		addr += 12;
	}
	for (int i = 0; i < MAX_CIDRS; i++) {
		if (i >= cfg.ncidrs)
			break;
		if (cfg.cidrs[i].family == family &&
		    prefix_eq(addr, cfg.cidrs[i].addr, cfg.cidrs[i].prefixlen))
			return true;
	}
	return false;
}

static __always_inline bool match_dst(const struct event *e)
{
	return match_dst_addr(e->family, e->daddr, e->dport);
}

/* Events without an errno (retransmits, resets) pass an errno filter, so
 * the chain that led to a matching failure stays visible. */
static __always_inline bool match_errno(__s32 err)
{
	if (!cfg.nerrnos || !err)
		return true;
	for (int i = 0; i < MAX_ERRNOS; i++)
		if (i < cfg.nerrnos && cfg.errnos[i] == err)
			return true;
	return false;
}
