/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox-mount: the layout of an emulator's root, computed in the parent.
 *
 * The root is an empty tmpfs holding only:
 *   /usr                    read-only, whole;
 *   /bin /sbin /lib /lib64  the merged-/usr symlinks as they are on the host
 *                           (bound read-only instead where they are real dirs);
 *   the binary              read-only, when it is not under /usr;
 *   the files the options name (the disk image), read-only unless writable;
 *   /dev/null, /dev/zero, /dev/urandom;
 *   /proc                   a fresh one, of the emulator's own pid namespace.
 *
 * Why all of /usr rather than the binary's DT_NEEDED closure: QEMU loads
 * block drivers and other modules with dlopen() at run time
 * (/usr/lib/x86_64-linux-gnu/qemu/block-*.so), glibc loads gconv and NSS
 * modules the same way, and none of them appear in ldd's output. /usr holds
 * no secrets (those live in /etc, /root, /home, /var), is read-only, and a
 * bind of one directory costs nothing at spawn time, where walking ELF
 * headers for every spawn would. The price, the host's other programs being
 * visible, is paid by the seccomp policy denying execve.
 *
 * Every bind is nosuid; only the device nodes lack nodev, and everything
 * but /usr and the binary is noexec.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu-error.h"
#include "sandbox-plan.h"

typedef struct {
        GArray *ops;          /* EmuMountOp */
        GPtrArray *dirs;      /* relative dirs to create */
        GPtrArray *files;     /* relative files to create */
        GHashTable *seen;     /* dsts and dirs already planned */
} Plan;

static void add_parents(Plan *pl, const char *rel)
{
        g_autofree char *dir = g_path_get_dirname(rel);
        if (g_str_equal(dir, ".") || g_hash_table_contains(pl->seen, dir))
                return;
        add_parents(pl, dir);
        g_hash_table_add(pl->seen, g_strdup(dir));
        g_ptr_array_add(pl->dirs, g_strdup(dir));
}

static bool under(const char *path, const char *dir)
{
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static bool add_bind(Plan *pl, const char *path, bool writable, bool dev, bool exec,
                     GError **error)
{
        char real[PATH_MAX];
        struct stat st;

        if (!realpath(path, real) || stat(real, &st) < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "cannot bind %s into the sandbox: %s", path, g_strerror(errno));
                return false;
        }
        const char *rel = real + 1;
        if (!*rel || g_hash_table_contains(pl->seen, rel)) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "cannot bind %s into the sandbox twice or as its root", real);
                return false;
        }
        for (guint i = 0; i < pl->ops->len; i++) {
                const EmuMountOp *o = &g_array_index(pl->ops, EmuMountOp, i);
                g_autofree char *abs = g_strconcat("/", o->dst, NULL);
                if (o->kind == EMU_MOUNT_BIND && o->is_dir && under(real, abs))
                        return true; /* already visible through a directory bind */
        }
        add_parents(pl, rel);
        g_hash_table_add(pl->seen, g_strdup(rel));
        bool is_dir = S_ISDIR(st.st_mode);
        if (is_dir)
                g_ptr_array_add(pl->dirs, g_strdup(rel));
        else
                g_ptr_array_add(pl->files, g_strdup(rel));
        EmuMountOp op = {
                .kind = EMU_MOUNT_BIND,
                .src = g_strdup(real),
                .dst = g_strdup(rel),
                .is_dir = is_dir,
                .attr = MOUNT_ATTR_NOSUID | (writable ? 0 : MOUNT_ATTR_RDONLY) |
                        (dev ? 0 : MOUNT_ATTR_NODEV) | (exec ? 0 : MOUNT_ATTR_NOEXEC),
        };
        g_array_append_val(pl->ops, op);
        return true;
}

bool emu_sandbox_plan_mounts(EmuSandbox *sb, const EmuSandboxConfig *cfg, GError **error)
{
        g_autoptr(GArray) ops = g_array_new(FALSE, TRUE, sizeof(EmuMountOp));
        g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        Plan pl = { ops, dirs, files, seen };
        bool ok = true;

        ok = add_bind(&pl, "/usr", false, false, true, error);
        static const char *const top[] = { "/bin", "/sbin", "/lib", "/lib64", "/lib32",
                                           "/libx32" };
        for (size_t i = 0; ok && i < G_N_ELEMENTS(top); i++) {
                struct stat st;
                if (lstat(top[i], &st) < 0)
                        continue;
                if (S_ISLNK(st.st_mode)) {
                        g_autofree char *target = g_file_read_link(top[i], NULL);
                        if (!target)
                                continue;
                        EmuMountOp op = { .kind = EMU_MOUNT_SYMLINK,
                                          .src = g_steal_pointer(&target),
                                          .dst = g_strdup(top[i] + 1) };
                        g_hash_table_add(seen, g_strdup(top[i] + 1));
                        g_array_append_val(ops, op);
                } else if (S_ISDIR(st.st_mode)) {
                        ok = add_bind(&pl, top[i], false, false, true, error);
                }
        }
        if (ok)
                ok = add_bind(&pl, cfg->binary, false, false, true, error);
        g_ptr_array_add(dirs, g_strdup("dev"));
        g_hash_table_add(seen, g_strdup("dev"));
        static const char *const devs[] = { "/dev/null", "/dev/zero", "/dev/urandom" };
        for (size_t i = 0; ok && i < G_N_ELEMENTS(devs); i++)
                ok = add_bind(&pl, devs[i], true, true, false, error);
        for (size_t i = 0; ok && i < cfg->n_binds; i++) {
                if (!g_path_is_absolute(cfg->binds[i].path)) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                                    "sandbox bind %s is not an absolute path",
                                    cfg->binds[i].path);
                        ok = false;
                        break;
                }
                ok = add_bind(&pl, cfg->binds[i].path, cfg->binds[i].writable, false, false,
                              error);
        }
        if (!ok) {
                for (guint i = 0; i < ops->len; i++) {
                        g_free(g_array_index(ops, EmuMountOp, i).src);
                        g_free(g_array_index(ops, EmuMountOp, i).dst);
                }
                return false;
        }
        g_ptr_array_add(dirs, g_strdup("proc"));
        EmuMountOp proc = { .kind = EMU_MOUNT_PROC, .dst = g_strdup("proc") };
        g_array_append_val(ops, proc);
        if (ops->len > EMU_MAX_MOUNTS) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "more than %d mounts in a sandbox", EMU_MAX_MOUNTS);
                for (guint i = 0; i < ops->len; i++) {
                        g_free(g_array_index(ops, EmuMountOp, i).src);
                        g_free(g_array_index(ops, EmuMountOp, i).dst);
                }
                return false;
        }
        g_ptr_array_add(dirs, NULL);
        g_ptr_array_add(files, NULL);
        sb->n_mounts = ops->len;
        sb->mounts = (EmuMountOp *)g_array_free(g_steal_pointer(&ops), FALSE);
        sb->mkdirs = (char **)g_ptr_array_free(g_steal_pointer(&dirs), FALSE);
        sb->mkfiles = (char **)g_ptr_array_free(g_steal_pointer(&files), FALSE);
        return true;
}
