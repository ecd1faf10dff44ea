/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The send-family syscalls, per architecture: their numbers, where the
 * syscall number lives in the user registers, and the arguments.
 *
 * bpf2go compiles the object once per target with __TARGET_ARCH_x86 or
 * __TARGET_ARCH_arm64; anything else is an error rather than a guess,
 * because a wrong number or register would silently read garbage.
 *
 * SYSCALL_NR reads through a helper, from any pointer; SYSCALL_NR_BTF is a
 * plain load, for a BTF pointer to the registers (tp_btf/sys_exit's),
 * which runs on every syscall and must stay cheap.
 *
 * The arguments come from libbpf's PT_REGS_PARMn_CORE_SYSCALL, which
 * knows that on arm64 regs[0] holds the return value once the syscall has
 * run, so the first argument is read from orig_x0 there. Our pinned
 * bpf_tracing.h stops at the fifth argument; the sixth is added here the
 * way newer libbpf defines it.
 */
#pragma once

#if defined(__TARGET_ARCH_x86)

#define NR_write 1
#define NR_writev 20
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_sendmmsg 307
#define NR_connect 42

#define SYSCALL_NR(regs) BPF_CORE_READ(regs, orig_ax)
#define SYSCALL_NR_BTF(regs) ((regs)->orig_ax)
#define SYSCALL_ARG6(regs) BPF_CORE_READ(regs, r9)

#elif defined(__TARGET_ARCH_arm64)

#define NR_write 64
#define NR_writev 66
#define NR_sendto 206
#define NR_sendmsg 211
#define NR_sendmmsg 269
#define NR_connect 203

/* The user-visible part of arm64's pt_regs (uapi asm/ptrace.h), which
 * libbpf's arm64 PT_REGS macros cast to. The committed vmlinux.h comes
 * from an x86 kernel and lacks it; being uapi, its layout is fixed. */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};

/* The syscall number (copied from x8 at entry), relocated by CO-RE
 * against arm64's struct pt_regs. */
struct pt_regs___arm64_nr {
	int syscallno;
} __attribute__((preserve_access_index));

#define SYSCALL_NR(regs) BPF_CORE_READ((struct pt_regs___arm64_nr *)(regs), syscallno)
#define SYSCALL_NR_BTF(regs) (((struct pt_regs___arm64_nr *)(regs))->syscallno)
#define SYSCALL_ARG6(regs) BPF_CORE_READ(__PT_REGS_CAST(regs), regs[5])

#else
#error "sendtrace knows the syscall numbers and registers of x86-64 and arm64 only"
#endif

#define SYSCALL_ARG1(regs) PT_REGS_PARM1_CORE_SYSCALL(regs)
#define SYSCALL_ARG2(regs) PT_REGS_PARM2_CORE_SYSCALL(regs)
#define SYSCALL_ARG3(regs) PT_REGS_PARM3_CORE_SYSCALL(regs)
#define SYSCALL_ARG5(regs) PT_REGS_PARM5_CORE_SYSCALL(regs)
