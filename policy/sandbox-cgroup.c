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
 *
 * The parent is prepared once at start-up (emu_cgroup_prepare_parent()):
 * the controllers can only be handed down from a cgroup with no process in
 * it, so emud steps out of its own cgroup into a supervisor sub-cgroup and
 * the leaves go beside it. Whatever stops that is said once, there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "emu-error.h"
#include "emu-util.h"
#include "sandbox-cgroup.h"
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
                        return g_str_equal(*l + 3, "/") ? g_strdup(mount)
                                                        : g_build_filename(mount, *l + 3, NULL);
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

/*
 * Start-up: the parent of the leaves. Everything below reads before it
 * writes, so a parent that is already right is left alone.
 */

#define WRITE_HINT                                                                                 \
        "emud needs a cgroup of its own that it may write: Delegate=yes and no "                   \
        "ProtectControlGroups= in emud.service, or cgroup-parent= in emud.conf"

static int fail(char **ret_message, int r, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static int fail(char **ret_message, int r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *why = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        *ret_message = g_strconcat("emulators get no memory or pids limits: ", why, NULL);
        return r;
}

/* A cgroup file, whitespace-trimmed, or -errno. cgroupfs reports size 0: read to EOF. */
static int read_cgroup_file(const char *dir, const char *file, char **ret)
{
        g_autofree char *path = g_build_filename(dir, file, NULL);
        emu_autofd fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        g_autoptr(GString) s = g_string_new(NULL);
        char buf[4096];
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                g_string_append_len(s, buf, n);
        }
        *ret = g_strstrip(g_string_free(g_steal_pointer(&s), FALSE));
        return 0;
}

/* The first of memory and pids that a cgroup.controllers-style list lacks, or NULL. */
static const char *missing_controller(const char *list)
{
        g_auto(GStrv) words = g_strsplit_set(list, " \n", -1);
        if (!g_strv_contains((const char *const *)words, "memory"))
                return "memory";
        if (!g_strv_contains((const char *const *)words, "pids"))
                return "pids";
        return NULL;
}

/* A controller bound to a cgroup v1 hierarchy (hybrid mode) is not available in cgroup2. */
static bool bound_to_v1(const char *controller)
{
        g_autofree char *info = NULL;
        if (!g_file_get_contents("/proc/self/mountinfo", &info, NULL, NULL))
                return false;
        g_auto(GStrv) lines = g_strsplit(info, "\n", -1);
        for (char **l = lines; *l; l++) {
                const char *sep = strstr(*l, " - cgroup ");
                if (!sep)
                        continue;
                g_auto(GStrv) f = g_strsplit(sep + 3, " ", 3); /* type, source, options */
                if (g_strv_length(f) < 3)
                        continue;
                g_auto(GStrv) opts = g_strsplit(f[2], ",", -1);
                if (g_strv_contains((const char *const *)opts, controller))
                        return true;
        }
        return false;
}

/*
 * How systemd marks a cgroup it has delegated (Delegate=yes). Everything below
 * such a cgroup is the delegate's too (a DelegateSubgroup= of systemd 254 and
 * later, say), so look up to the cgroup2 mount.
 */
static bool is_delegated(const char *mount, const char *dir)
{
        static const char *const names[] = { "trusted.delegate", "user.delegate" };
        g_autofree char *d = g_strdup(dir);
        while (strlen(d) > strlen(mount)) {
                for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                        char v[8];
                        ssize_t n = getxattr(d, names[i], v, sizeof(v));
                        if (n == 1 && v[0] == '1')
                                return true;
                }
                *strrchr(d, '/') = '\0';
        }
        return false;
}

static bool same_dir(const char *a, const char *b)
{
        struct stat sa, sb;
        return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
               sa.st_ino == sb.st_ino;
}

/* Another process than emud in the cgroup, as "pid N (comm)"; NULL if there is none. */
static char *other_process(const char *procs)
{
        g_auto(GStrv) pids = g_strsplit_set(procs, " \n", -1);
        for (char **p = pids; *p; p++) {
                gint64 pid = g_ascii_strtoll(*p, NULL, 10);
                if (pid <= 0 || pid == getpid())
                        continue;
                g_autofree char *path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/comm", pid);
                g_autofree char *comm = NULL;
                if (!g_file_get_contents(path, &comm, NULL, NULL))
                        comm = g_strdup("?");
                return g_strdup_printf("pid %" G_GINT64_FORMAT " (%s)", pid, g_strstrip(comm));
        }
        return NULL;
}

/* emud into <own>/supervisor, then the controllers on for <own>'s children. */
static int step_aside(const char *own, char **ret_message)
{
        g_autofree char *sup = g_build_filename(own, EMU_CGROUP_SUPERVISOR, NULL);
        int r;

        /* Left by an earlier emud (its cgroup is only removed once empty): reuse it. */
        r = mkdir(sup, 0755) < 0 ? -errno : 0;
        bool made = r == 0;
        if (r < 0 && r != -EEXIST)
                return fail(ret_message, r, "cannot create %s: %s; %s", sup, g_strerror(-r),
                            WRITE_HINT);
        /* "0" is the writer itself; cgroup.procs moves all of its threads at once. */
        r = write_file(sup, "cgroup.procs", "0");
        if (r < 0) {
                if (made)
                        (void)rmdir(sup);
                return fail(ret_message, r, "cannot move emud into %s/cgroup.procs: %s; %s", sup,
                            g_strerror(-r), WRITE_HINT);
        }
        r = write_file(own, "cgroup.subtree_control", "+memory +pids");
        if (r < 0) {
                /* Undo, so that the tree is as it was and the leaves go where they used to. */
                int back = write_file(own, "cgroup.procs", "0");
                if (back == 0 && made)
                        (void)rmdir(sup);
                return fail(ret_message, r,
                            "cannot enable memory and pids in %s/cgroup.subtree_control: %s "
                            "(%s); %s",
                            own, g_strerror(-r),
                            back == 0 ? "emud moved back"
                                      : "emud could not move back and stays in the supervisor "
                                        "group",
                            r == -EBUSY ? "a process joined that cgroup meanwhile" : WRITE_HINT);
        }
        *ret_message = g_strdup_printf("moved emud into %s and enabled memory and pids in "
                                       "%s/cgroup.subtree_control; emulator cgroups go beside "
                                       "%s",
                                       sup, own, EMU_CGROUP_SUPERVISOR);
        return 0;
}

int emu_cgroup_prepare_parent(const char *configured, char **ret_parent, char **ret_message)
{
        g_autofree char *mount = find_cgroup2_mount();
        g_autofree char *own = NULL, *offered = NULL, *enabled = NULL, *procs = NULL;
        g_autofree char *message = NULL;
        int r;

        if (!mount)
                return fail(ret_message, -ENOMEDIUM,
                            "no cgroup2 hierarchy is mounted (none in /proc/self/mountinfo)");
        own = own_cgroup(mount);
        if (!own)
                return fail(ret_message, -ENOENT,
                            "/proc/self/cgroup has no cgroup2 (\"0::\") line");
        if (configured && !same_dir(configured, own)) {
                /* Someone else's cgroup: emud has no business rearranging it. */
                *ret_parent = g_strdup(configured);
                *ret_message = NULL;
                return 0;
        }

        r = read_cgroup_file(own, "cgroup.controllers", &offered);
        if (r < 0)
                return fail(ret_message, r, "cannot read %s/cgroup.controllers: %s", own,
                            g_strerror(-r));
        const char *missing = missing_controller(offered);
        if (missing)
                return fail(ret_message, -EOPNOTSUPP,
                            "%s/cgroup.controllers has no %s controller (it offers \"%s\"): "
                            "%s",
                            own, missing, offered,
                            bound_to_v1(missing)
                                    ? "a cgroup v1 hierarchy holds it (hybrid mode); boot with "
                                      "systemd.unified_cgroup_hierarchy=1"
                                    : "the cgroup above does not hand it down; run emud as "
                                      "emud.service with Delegate=yes, or set cgroup-parent= in "
                                      "emud.conf");

        r = read_cgroup_file(own, "cgroup.subtree_control", &enabled);
        if (r < 0)
                return fail(ret_message, r, "cannot read %s/cgroup.subtree_control: %s", own,
                            g_strerror(-r));
        if (!missing_controller(enabled)) {
                *ret_parent = g_steal_pointer(&own);
                *ret_message = NULL;
                return 0;
        }

        g_autofree char *type = g_build_filename(own, "cgroup.type", NULL);
        if (access(type, F_OK) < 0 && errno == ENOENT) {
                /* The root cgroup, the only one exempt from "no internal processes". */
                r = write_file(own, "cgroup.subtree_control", "+memory +pids");
                if (r < 0)
                        return fail(ret_message, r,
                                    "cannot enable memory and pids in %s/cgroup.subtree_control: "
                                    "%s; %s",
                                    own, g_strerror(-r), WRITE_HINT);
                message = g_strdup_printf("enabled memory and pids in %s/cgroup.subtree_control",
                                          own);
        } else {
                /*
                 * sd_booted()'s test. Under systemd, a cgroup that is not delegated is
                 * systemd's: it rewrites cgroup.subtree_control whenever it realizes the
                 * unit again (daemon-reload, set-property), and the limits would go without
                 * a word.
                 */
                if (access("/run/systemd/system/", F_OK) == 0 && !is_delegated(mount, own))
                        return fail(ret_message, -EPERM,
                                    "%s is not delegated to emud (neither it nor a cgroup above "
                                    "it has a trusted.delegate or user.delegate attribute), so "
                                    "its cgroup.subtree_control is systemd's; set Delegate=yes "
                                    "in emud.service, or cgroup-parent= in emud.conf",
                                    own);
                r = read_cgroup_file(own, "cgroup.procs", &procs);
                if (r < 0)
                        return fail(ret_message, r, "cannot read %s/cgroup.procs: %s", own,
                                    g_strerror(-r));
                g_autofree char *other = other_process(procs);
                if (other)
                        return fail(ret_message, -EBUSY,
                                    "%s/cgroup.procs holds %s besides emud, and a cgroup with "
                                    "processes in it cannot hand controllers down (emud moves "
                                    "only itself aside); run emud in a cgroup of its own "
                                    "(emud.service, Delegate=yes), or set cgroup-parent= in "
                                    "emud.conf",
                                    own, other);
                r = step_aside(own, &message);
                if (r < 0) {
                        *ret_message = g_steal_pointer(&message);
                        return r;
                }
        }
        *ret_parent = g_steal_pointer(&own);
        *ret_message = g_steal_pointer(&message);
        return 0;
}
