/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox: the parent half of confinement. Everything that can fail for a
 * reason worth a message (a missing image, an unknown user, a policy that
 * does not compile) fails here, before fork, with a GError; the child then
 * only replays a finished plan (sandbox-child.c).
 *
 * Ids: with a user namespace the child's namespace maps exactly one uid and
 * one gid, the unprivileged ones, to themselves. Inside and outside the
 * process has the same, unprivileged, ids; host root is not mapped at all,
 * so files owned by root show as nobody inside and no id inside can reach
 * root outside.
 */
#include <errno.h>
#include <linux/sched.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "emu-error.h"
#include "emu-util.h"
#include "emu-error.h"
#include "sandbox-plan.h"

#define DEFAULT_USER "emud-emu"
#define FALLBACK_ID 65534

static const struct {
        const char *name;
        unsigned bit;
} step_names[] = {
        { "namespaces", EMU_SANDBOX_NAMESPACES }, { "mounts", EMU_SANDBOX_MOUNTS },
        { "rlimits", EMU_SANDBOX_RLIMITS },       { "cgroup", EMU_SANDBOX_CGROUP },
        { "ids", EMU_SANDBOX_IDS },               { "caps", EMU_SANDBOX_CAPS },
        { "seccomp", EMU_SANDBOX_SECCOMP },
};

bool emu_sandbox_steps_parse(const char *text, unsigned *ret_steps, GError **error)
{
        g_auto(GStrv) words = g_strsplit(text, ",", -1);
        unsigned steps = 0;

        for (char **w = words; *w; w++) {
                const char *word = g_strstrip(*w);
                bool found = false;
                if (g_str_equal(word, "all")) {
                        steps |= EMU_SANDBOX_ALL;
                        continue;
                }
                if (g_str_equal(word, "none") || !*word)
                        continue;
                for (size_t i = 0; i < G_N_ELEMENTS(step_names); i++)
                        if (g_str_equal(word, step_names[i].name)) {
                                steps |= step_names[i].bit;
                                found = true;
                        }
                if (!found) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "unknown sandbox step \"%s\"", word);
                        return false;
                }
        }
        *ret_steps = steps;
        return true;
}

const char *emu_child_step_name(int step)
{
        static const char *const names[] = {
                [EMU_STEP_FDS] = "fds",         [EMU_STEP_SYNC] = "sync",
                [EMU_STEP_NAMESPACES] = "namespaces", [EMU_STEP_MOUNTS] = "mounts",
                [EMU_STEP_RLIMITS] = "rlimits", [EMU_STEP_IDS] = "ids",
                [EMU_STEP_CAPS] = "caps",       [EMU_STEP_SECCOMP] = "seccomp",
                [EMU_STEP_EXEC] = "execve",
        };
        return step >= 0 && (size_t)step < G_N_ELEMENTS(names) ? names[step] : "?";
}

static bool resolve_ids(EmuSandbox *sb, const EmuSandboxConfig *cfg, GError **error)
{
        sb->uid = cfg->uid;
        sb->gid = cfg->gid;
        if (sb->uid == EMU_SANDBOX_ID_DEFAULT || sb->gid == (gid_t)EMU_SANDBOX_ID_DEFAULT) {
                struct passwd *pw = getpwnam(DEFAULT_USER);
                if (pw) {
                        if (sb->uid == EMU_SANDBOX_ID_DEFAULT)
                                sb->uid = pw->pw_uid;
                        if (sb->gid == (gid_t)EMU_SANDBOX_ID_DEFAULT)
                                sb->gid = pw->pw_gid;
                } else {
                        g_ptr_array_add(sb->notes,
                                        g_strdup_printf("ids: no user %s, using %d:%d",
                                                        DEFAULT_USER, FALLBACK_ID,
                                                        FALLBACK_ID));
                        if (sb->uid == EMU_SANDBOX_ID_DEFAULT)
                                sb->uid = FALLBACK_ID;
                        if (sb->gid == (gid_t)EMU_SANDBOX_ID_DEFAULT)
                                sb->gid = FALLBACK_ID;
                }
        }
        if (sb->uid == 0 || sb->gid == 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                            "sandbox ids must not be root (uid %u, gid %u)", (unsigned)sb->uid,
                            (unsigned)sb->gid);
                return false;
        }
        /* namespace_root: root inside, still only the unprivileged ids outside. */
        sb->inner_uid = cfg->namespace_root ? 0 : sb->uid;
        sb->inner_gid = cfg->namespace_root ? 0 : sb->gid;
        g_snprintf(sb->uid_map, sizeof(sb->uid_map), "%u %u 1\n", (unsigned)sb->inner_uid,
                   (unsigned)sb->uid);
        g_snprintf(sb->gid_map, sizeof(sb->gid_map), "%u %u 1\n", (unsigned)sb->inner_gid,
                   (unsigned)sb->gid);
        return true;
}

static int read_cap_last(void)
{
        g_autofree char *s = NULL;
        if (!g_file_get_contents("/proc/sys/kernel/cap_last_cap", &s, NULL, NULL))
                return 63; /* dropping unknown capabilities just fails with EINVAL */
        return (int)g_ascii_strtoll(s, NULL, 10);
}

EmuSandbox *emu_sandbox_new(const EmuSandboxConfig *cfg, GError **error)
{
        g_autoptr(EmuSandbox) sb = g_new0(EmuSandbox, 1);

        sb->cgroup_fd = -1;
        sb->notes = g_ptr_array_new_with_free_func(g_free);
        sb->steps = cfg->steps;
        if ((sb->steps & EMU_SANDBOX_MOUNTS) && !(sb->steps & EMU_SANDBOX_NAMESPACES)) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                            "the mounts step needs the namespaces step");
                return NULL;
        }
        if (!cfg->binary || !g_path_is_absolute(cfg->binary) || access(cfg->binary, X_OK) < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "cannot execute %s: %s", cfg->binary ? cfg->binary : "(none)",
                            g_strerror(cfg->binary ? errno : EINVAL));
                return NULL;
        }
        if (sb->steps & EMU_SANDBOX_NAMESPACES) {
                sb->userns = true;
                /* The cgroup namespace is unshared by the child once it is in its leaf. */
                sb->clone_flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
                                  CLONE_NEWUTS | CLONE_NEWNET;
        }
        if (cfg->namespace_root && !sb->userns) {
                /* Outside a user namespace, uid 0 would be the host's root. */
                g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                            "namespace-root needs the namespaces step");
                return NULL;
        }
        /* A user namespace has to map some id, so it always brings the ids step. */
        if (((sb->steps & EMU_SANDBOX_IDS) || sb->userns) && !resolve_ids(sb, cfg, error))
                return NULL;
        if ((sb->steps & EMU_SANDBOX_MOUNTS) && !emu_sandbox_plan_mounts(sb, cfg, error))
                return NULL;
        sb->nofile.rlim_cur = sb->nofile.rlim_max = cfg->nofile ? cfg->nofile : 1024;
        sb->nproc.rlim_cur = sb->nproc.rlim_max = cfg->nproc ? cfg->nproc : 256;
        sb->cap_last = read_cap_last();

        if (sb->steps & EMU_SANDBOX_SECCOMP) {
                if (!cfg->policy) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "the seccomp step needs a policy");
                        return NULL;
                }
                sb->notify = !cfg->no_supervisor;
                sb->mode = cfg->mode;
                int r = emu_policy_compile(cfg->policy, sb->notify ? EMU_COMPILE_NOTIFY : 0,
                                           &sb->bpf);
                if (r < 0) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "cannot compile policy %s: %s", cfg->policy->name,
                                    g_strerror(-r));
                        return NULL;
                }
        }
        if ((sb->steps & EMU_SANDBOX_CGROUP) && !emu_sandbox_plan_cgroup(sb, cfg, error))
                return NULL;
        g_ptr_array_add(sb->notes, NULL);
        return g_steal_pointer(&sb);
}

void emu_sandbox_free(EmuSandbox *sb)
{
        if (!sb)
                return;
        emu_sandbox_cgroup_remove(sb);
        for (size_t i = 0; i < sb->n_mounts; i++) {
                g_free(sb->mounts[i].src);
                g_free(sb->mounts[i].dst);
        }
        g_free(sb->mounts);
        g_strfreev(sb->mkdirs);
        g_strfreev(sb->mkfiles);
        emu_bpf_free(sb->bpf);
        if (sb->notes)
                g_ptr_array_unref(sb->notes);
        g_free(sb);
}

const char *const *emu_sandbox_notes(const EmuSandbox *sb)
{
        return (const char *const *)sb->notes->pdata;
}

bool emu_sandbox_has_listener(const EmuSandbox *sb)
{
        return sb->bpf && sb->notify;
}

EmuSeccompMode emu_sandbox_mode(const EmuSandbox *sb)
{
        return sb->mode;
}

uid_t emu_sandbox_uid(const EmuSandbox *sb)
{
        return sb->uid;
}

const char *emu_sandbox_cgroup(const EmuSandbox *sb)
{
        return sb->cgroup_path;
}
