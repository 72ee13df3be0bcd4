/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Internal to policy/: the computed sandbox, as the parent leaves it for the
 * child. Everything here is plain memory that survives fork unchanged; the
 * child reads it and makes syscalls, nothing more.
 */
#include <linux/filter.h>
#include <stdbool.h>
#include <sys/resource.h>

#include "policy-compile.h"
#include "sandbox.h"

typedef enum {
        EMU_MOUNT_BIND,
        EMU_MOUNT_SYMLINK,
        EMU_MOUNT_PROC,
} EmuMountKind;

typedef struct {
        EmuMountKind kind;
        char *src;              /* bind: host path; symlink: link target */
        char *dst;              /* relative to the new root */
        bool is_dir;
        unsigned long long attr; /* MOUNT_ATTR_* set on a bind */
} EmuMountOp;

/* Where a child failed, for the parent's message. */
typedef enum {
        EMU_STEP_FDS,
        EMU_STEP_SYNC,
        EMU_STEP_NAMESPACES,
        EMU_STEP_MOUNTS,
        EMU_STEP_RLIMITS,
        EMU_STEP_IDS,
        EMU_STEP_CAPS,
        EMU_STEP_SECCOMP,
        EMU_STEP_EXEC,
} EmuChildStep;

typedef struct {
        int step;
        int error;
        int index;              /* mount op, where it applies */
} EmuChildFailure;

#define EMU_MAX_MOUNTS 64

struct EmuSandbox {
        unsigned steps;
        unsigned long long clone_flags; /* namespaces made by clone3 */
        bool userns;
        uid_t uid;
        gid_t gid;
        uid_t inner_uid;        /* what the process is inside its user namespace */
        gid_t inner_gid;
        char uid_map[64], gid_map[64];

        EmuMountOp *mounts;
        size_t n_mounts;
        char **mkdirs;          /* relative, parents first */
        char **mkfiles;         /* empty files to bind files onto */

        struct rlimit nofile, nproc;
        int cap_last;

        char *cgroup_path;
        int cgroup_fd;

        EmuBpf *bpf;
        bool notify;
        EmuSeccompMode mode;

        GPtrArray *notes;
};

const char *emu_child_step_name(int step);

/* sandbox-mount.c: fill mounts/mkdirs/mkfiles. */
bool emu_sandbox_plan_mounts(EmuSandbox *sb, const EmuSandboxConfig *cfg, GError **error);

/* sandbox-cgroup.c: make the leaf; problems go to notes, only bad config fails. */
bool emu_sandbox_plan_cgroup(EmuSandbox *sb, const EmuSandboxConfig *cfg, GError **error);
void emu_sandbox_cgroup_remove(EmuSandbox *sb);

/*
 * sandbox-child.c: in the child, after its fds are in place. sync_fd is read
 * once (the parent has written the id maps); handoff_fd is closed once the
 * filter is loaded, which tells the parent where the listener is.
 * Returns 0 or -errno with *ret_failure filled; on success the next call is execve.
 */
int emu_sandbox_child_apply(const EmuSandbox *sb, int sync_fd, int handoff_fd,
                            EmuChildFailure *ret_failure);
