/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <linux/filter.h>
#include <seccomp.h>
#include <stdbool.h>

#include "emu-cleanup.h"
#include "policy.h"

/*
 * Policy → seccomp BPF, in the parent, with libseccomp. The result is a
 * plain sock_fprog that a forked child passes to seccomp(2) as it is.
 */

typedef enum {
        /*
         * Syscalls outside the policy go to the supervisor (SECCOMP_RET_USER_NOTIF)
         * instead of the policy's default action, so emud can name them. The
         * supervisor then applies the mode: enforce, log or learn.
         */
        EMU_COMPILE_NOTIFY = 1 << 0,
        /* Linear syscall list instead of libseccomp's binary tree; for the benchmark. */
        EMU_COMPILE_NO_OPTIMIZE = 1 << 1,
} EmuCompileFlags;

typedef struct {
        struct sock_fprog prog;
} EmuBpf;

/*
 * Build the libseccomp filter: the rules of p as SCMP_ACT_ALLOW, plus close,
 * exit and exit_group, which are always allowed (the launcher closes its
 * handoff socket after loading the filter, and refusing exit only leaves a
 * process behind). Other architectures than the native one are killed.
 */
int emu_policy_build(const EmuPolicy *p, unsigned flags, scmp_filter_ctx *ret_ctx);

/* emu_policy_build(), exported to BPF through a memfd. */
int emu_policy_compile(const EmuPolicy *p, unsigned flags, EmuBpf **ret_bpf);

void emu_bpf_free(EmuBpf *bpf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuBpf, emu_bpf_free)
