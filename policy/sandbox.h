/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "policy.h"
#include "seccomp-watch.h"

/*
 * The confinement of one emulator, computed in the parent before fork:
 * namespaces, the minimal root, rlimits, the cgroup leaf, ids, capabilities
 * and the compiled seccomp filter. emu_launch() applies it in the child.
 */

typedef enum {
        EMU_SANDBOX_NAMESPACES = 1 << 0, /* user, mount, pid, ipc, uts, net, cgroup */
        EMU_SANDBOX_MOUNTS = 1 << 1,     /* minimal root + pivot_root; needs NAMESPACES */
        EMU_SANDBOX_RLIMITS = 1 << 2,
        EMU_SANDBOX_CGROUP = 1 << 3,
        EMU_SANDBOX_IDS = 1 << 4,        /* unprivileged uid/gid */
        EMU_SANDBOX_CAPS = 1 << 5,       /* drop every capability, set no_new_privs */
        EMU_SANDBOX_SECCOMP = 1 << 6,
        EMU_SANDBOX_ALL = (1 << 7) - 1,
} EmuSandboxStep;

/* Parse "namespaces,mounts,..." (or "all", "none"); false names the bad word in error. */
bool emu_sandbox_steps_parse(const char *text, unsigned *ret_steps, GError **error);

typedef struct {
        const char *path;     /* absolute; shown at the same path inside */
        bool writable;
} EmuSandboxBind;

#define EMU_SANDBOX_ID_DEFAULT ((uid_t)-1)

typedef struct {
        unsigned steps;                 /* EmuSandboxStep bits that are on */
        const char *binary;             /* what will be exec'd; bound read-only if outside /usr */
        const EmuSandboxBind *binds;    /* the files the options name (disk image...) */
        size_t n_binds;

        rlim_t nofile, nproc;           /* 0: 1024 and 256; RLIMIT_CORE is always 0 */

        const char *cgroup_parent;      /* NULL: emud's own cgroup in the cgroup2 mount */
        const char *cgroup_name;        /* leaf name, e.g. the emulator id; required */
        guint64 memory_max, pids_max;   /* 0: not set */

        uid_t uid;                      /* EMU_SANDBOX_ID_DEFAULT: user emud-emu, else 65534 */
        gid_t gid;
        bool namespace_root;            /* uid and gid 0 inside the user namespace (mapped to
                                           uid and gid outside), with its capabilities there */

        const EmuPolicy *policy;        /* required with EMU_SANDBOX_SECCOMP */
        EmuSeccompMode mode;
        bool no_supervisor;             /* the policy's @default acts in the kernel, unnamed */
} EmuSandboxConfig;

typedef struct EmuSandbox EmuSandbox;

/*
 * Compute everything the child will apply. Fails (nothing created) on a bad
 * path, an unknown user or a policy that does not compile. Problems that only
 * weaken a step on this machine (no writable cgroup2, no memory controller)
 * are not errors: they are listed by emu_sandbox_notes() for the caller to log.
 */
EmuSandbox *emu_sandbox_new(const EmuSandboxConfig *cfg, GError **error);

/* Removes the cgroup leaf too; call it after the process has been reaped. */
void emu_sandbox_free(EmuSandbox *sb);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuSandbox, emu_sandbox_free)

/* NULL-terminated; never NULL. */
const char *const *emu_sandbox_notes(const EmuSandbox *sb);

/* Whether the launch returns a seccomp listener to watch, and in which mode. */
bool emu_sandbox_has_listener(const EmuSandbox *sb);
EmuSeccompMode emu_sandbox_mode(const EmuSandbox *sb);
uid_t emu_sandbox_uid(const EmuSandbox *sb);
/* The cgroup leaf directory, NULL when the cgroup step did not happen. */
const char *emu_sandbox_cgroup(const EmuSandbox *sb);
