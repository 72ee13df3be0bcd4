/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * confine: each emulator's sandbox, as the daemon uses the policy/ library.
 *
 * What a kind may touch comes from its descriptor: the sandbox profile
 * (steps, policy, rlimits, cgroup limits) and its path options (bound into
 * the emulator's root, read-only unless the kind says the option is
 * written). The emulator runs as an unprivileged user, so an image it
 * cannot open as that user is refused here with a clear error, rather than
 * failing later inside the sandbox.
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "confine.h"
#include "emu-error.h"
#include "emu-log.h"
#include "emud-build.h"

EmuPolicy *confine_load_policy(const EmudConfig *cfg, const EmuKind *kind, GError **error)
{
        if (!cfg->sandbox)
                return NULL;
        unsigned steps = 0;
        g_autoptr(GError) err = NULL;
        if (!emu_sandbox_steps_parse(kind->sandbox_steps, &steps, &err)) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_DESCRIPTOR, "%s: sandbox steps: %s",
                            kind->origin, err->message);
                return NULL;
        }
        if (!(steps & EMU_SANDBOX_SECCOMP))
                return NULL; /* no filter: no policy needed */
        const char *dirs[] = { cfg->admin_policy_dir, cfg->policy_dir, NULL };
        EmuPolicy *p = emu_policy_load(kind->policy, dirs, &err);
        if (!p)
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_DESCRIPTOR,
                            "seccomp policy of kind %s: %s", kind->name, err->message);
        return p;
}

bool confine_check_kinds(const EmudConfig *cfg, GHashTable *kinds, GError **error)
{
        GHashTableIter it;
        const EmuKind *k;
        g_hash_table_iter_init(&it, kinds);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&k)) {
                GError *err = NULL;
                g_autoptr(EmuPolicy) p = confine_load_policy(cfg, k, &err);
                if (err) {
                        g_propagate_error(error, err);
                        return false;
                }
        }
        return true;
}

/* Mode bits only: good enough to catch the usual mistake; an ACL is trusted as it is. */
static bool may_access(const char *path, uid_t uid, gid_t gid, bool writable)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return false;
        if (getxattr(path, "system.posix_acl_access", NULL, 0) >= 0)
                return true;
        mode_t need = writable ? 06 : 04;
        if (st.st_uid == uid)
                return ((st.st_mode >> 6) & need) == need;
        if (st.st_gid == gid)
                return ((st.st_mode >> 3) & need) == need;
        return (st.st_mode & need) == need;
}

EmuSandbox *confine_prepare(const EmudConfig *cfg, const EmuKind *k, const EmuPlan *plan,
                            EmuPolicy *policy, EmuSeccompMode mode, const char *leaf,
                            const EmuLogCtx *ctx, GError **error)
{
        unsigned steps = 0;
        if (!cfg->sandbox)
                return NULL;
        if (!emu_sandbox_steps_parse(k->sandbox_steps, &steps, error))
                return NULL;
        if (steps == 0)
                return NULL;

        g_autoptr(GArray) binds = g_array_new(FALSE, TRUE, sizeof(EmuSandboxBind));
        for (guint i = 0; i < k->options->len; i++) {
                const EmuOptionSpec *o = g_ptr_array_index(k->options, i);
                const char *v = g_hash_table_lookup(plan->values, o->name);
                if (o->type != EMU_OPT_PATH || !v)
                        continue;
                EmuSandboxBind b = { .path = v,
                                     .writable = emu_option_writable(o, plan->values) };
                g_array_append_val(binds, b);
        }
        g_autofree char *sock_dir = NULL;
        const char *sock = g_hash_table_lookup(plan->values, "@socket");
        if (k->emulator_listens && sock) {
                /* It binds its socket there itself. */
                sock_dir = g_path_get_dirname(sock);
                EmuSandboxBind b = { .path = sock_dir, .writable = true };
                g_array_append_val(binds, b);
        }
        EmuSandboxConfig sc = {
                .steps = steps,
                .binary = k->binary,
                .binds = (const EmuSandboxBind *)binds->data,
                .n_binds = binds->len,
                .nofile = k->nofile,
                .nproc = k->nproc,
                .cgroup_parent = cfg->cgroup_parent,
                .cgroup_name = leaf,
                .memory_max = k->memory_max,
                .pids_max = k->pids_max,
                .uid = cfg->emulator_uid,
                .gid = cfg->emulator_gid,
                .namespace_root = k->namespace_root,
                .policy = policy,
                .mode = mode,
        };
        if (!policy && (steps & EMU_SANDBOX_SECCOMP)) {
                /* Never run it without the filter its kind asks for. */
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_DESCRIPTOR,
                            "no seccomp policy '%s' could be loaded for kind %s",
                            k->policy, k->name);
                return NULL;
        }
        EmuSandbox *sb = emu_sandbox_new(&sc, error);
        if (!sb)
                return NULL;

        for (const char *const *n = emu_sandbox_notes(sb); *n; n++)
                emu_info(ctx, "sandbox: %s", *n);
        uid_t uid = emu_sandbox_uid(sb);
        /* The configured group, else the user's own (65534 is nogroup's gid too). */
        gid_t gid = cfg->emulator_gid != (gid_t)-1 ? cfg->emulator_gid : (gid_t)uid;
        if (steps & EMU_SANDBOX_IDS) {
                for (guint i = 0; i < binds->len; i++) {
                        const EmuSandboxBind *b = &g_array_index(binds, EmuSandboxBind, i);
                        if (may_access(b->path, uid, gid, b->writable))
                                continue;
                        g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                                    "%s is not %s by the emulator's user (uid %u): give that "
                                    "user access (chown, chmod or an ACL) or set "
                                    "emulator-user in emud.conf",
                                    b->path, b->writable ? "readable and writable" : "readable",
                                    (unsigned)uid);
                        emu_sandbox_free(sb);
                        return NULL;
                }
        }
        return sb;
}
