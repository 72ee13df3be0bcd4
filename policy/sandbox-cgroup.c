/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox-cgroup: a cgroup v2 leaf per emulator, with memory.max and
 * pids.max, entered atomically by clone3(CLONE_INTO_CGROUP), so the process
 * never runs a single instruction outside its limits.
 *
 * Cgroups are a best-effort step: on a host without a writable cgroup2
 * mount, or where the parent has not got the memory or pids controller
 * delegated, the spawn goes on and the missing part is listed in the
 * sandbox's notes. Only a leaf that cannot be created in a writable
 * hierarchy is treated as a real error, since that is a configuration
 * mistake (a stale leaf still holding processes, a bad parent path).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu-error.h"
#include "emu-util.h"
#include "emu-error.h"
#include "sandbox-plan.h"

static void note(EmuSandbox *sb, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void note(EmuSandbox *sb, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_ptr_array_add(sb->notes, g_strdup_vprintf(fmt, ap));
        va_end(ap);
}

/* The cgroup2 mount point, from /proc/self/mountinfo; NULL if there is none. */
static char *find_cgroup2_mount(void)
{
        g_autofree char *info = NULL;
        if (!g_file_get_contents("/proc/self/mountinfo", &info, NULL, NULL))
                return NULL;
        g_auto(GStrv) lines = g_strsplit(info, "\n", -1);
        for (char **l = lines; *l; l++) {
                const char *sep = strstr(*l, " - ");
                if (!sep || !g_str_has_prefix(sep, " - cgroup2 "))
                        continue;
                g_auto(GStrv) f = g_strsplit(*l, " ", 6);
                if (g_strv_length(f) >= 5)
                        return g_strdup(f[4]); /* mount point; no escapes in /sys paths */
        }
        return NULL;
}

/* emud's own cgroup under the cgroup2 mount, from the "0::" line. */
static char *own_cgroup(const char *mount)
{
        g_autofree char *self = NULL;
        if (!g_file_get_contents("/proc/self/cgroup", &self, NULL, NULL))
                return NULL;
        g_auto(GStrv) lines = g_strsplit(self, "\n", -1);
        for (char **l = lines; *l; l++)
                if (g_str_has_prefix(*l, "0::"))
                        return g_build_filename(mount, *l + 3, NULL);
        return NULL;
}

static int write_file(const char *dir, const char *file, const char *value)
{
        g_autofree char *path = g_build_filename(dir, file, NULL);
        emu_autofd fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, value, strlen(value)) < 0)
                return -errno;
        return 0;
}

static void set_limit(EmuSandbox *sb, const char *file, guint64 value)
{
        char buf[32];
        if (!value)
                return;
        g_snprintf(buf, sizeof(buf), "%" G_GUINT64_FORMAT, value);
        int r = write_file(sb->cgroup_path, file, buf);
        if (r == -ENOENT)
                note(sb, "cgroup: %s has no %s (controller not enabled); limit not set",
                     sb->cgroup_path, file);
        else if (r < 0)
                note(sb, "cgroup: cannot set %s: %s", file, g_strerror(-r));
}

bool emu_sandbox_plan_cgroup(EmuSandbox *sb, const EmuSandboxConfig *cfg, GError **error)
{
        g_autofree char *mount = find_cgroup2_mount();
        g_autofree char *parent = NULL;

        if (!cfg->cgroup_name || !*cfg->cgroup_name || strchr(cfg->cgroup_name, '/') ||
            cfg->cgroup_name[0] == '.') {
                g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                            "the cgroup step needs a leaf name without '/'");
                return false;
        }
        if (cfg->cgroup_parent)
                parent = g_strdup(cfg->cgroup_parent);
        else if (mount)
                parent = own_cgroup(mount);
        if (!parent) {
                note(sb, "cgroup: no cgroup2 hierarchy mounted; no memory or pids limits");
                return true;
        }
        if (access(parent, W_OK) < 0) {
                note(sb, "cgroup: %s is not writable (%s); no memory or pids limits", parent,
                     g_strerror(errno));
                return true;
        }
        /* May fail for lack of delegation; the leaf then just lacks the limit files. */
        if (cfg->memory_max)
                (void)write_file(parent, "cgroup.subtree_control", "+memory");
        if (cfg->pids_max)
                (void)write_file(parent, "cgroup.subtree_control", "+pids");

        g_autofree char *leaf_name = g_strconcat("emud-", cfg->cgroup_name, NULL);
        g_autofree char *leaf = g_build_filename(parent, leaf_name, NULL);
        /* A leftover from a crashed emud is empty (its processes died with it) and removable. */
        (void)rmdir(leaf);
        if (mkdir(leaf, 0755) < 0) {
                if (errno == EROFS || errno == EACCES || errno == EPERM) {
                        note(sb, "cgroup: cannot create %s (%s); no memory or pids limits",
                             leaf, g_strerror(errno));
                        return true;
                }
                if (errno == EEXIST)
                        /* rmdir() above failed: it still has processes in it. */
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "cgroup %s exists and is in use (by another emud with "
                                    "the same VM and emulator names under %s?)",
                                    leaf, parent);
                else
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "cannot create cgroup %s: %s", leaf, g_strerror(errno));
                return false;
        }
        sb->cgroup_path = g_steal_pointer(&leaf);
        sb->cgroup_fd = open(sb->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sb->cgroup_fd < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED, "cannot open %s: %s",
                            sb->cgroup_path, g_strerror(errno));
                return false;
        }
        set_limit(sb, "memory.max", cfg->memory_max);
        set_limit(sb, "pids.max", cfg->pids_max);
        return true;
}

void emu_sandbox_cgroup_remove(EmuSandbox *sb)
{
        sb->cgroup_fd = emu_close(sb->cgroup_fd);
        if (sb->cgroup_path) {
                (void)rmdir(sb->cgroup_path);
                g_clear_pointer(&sb->cgroup_path, g_free);
        }
}
