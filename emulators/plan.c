/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * plan: a kind and a user's options rendered into what a launch needs: the
 * argument vector, the normalised option values and the device_add
 * arguments, after every path the options name has been checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "descriptor-internal.h"
#include "emu-error.h"
#include "emu-util.h"


bool emu_option_writable(const EmuOptionSpec *o, GHashTable *values)
{
        if (o->writable)
                return true;
        const char *ro = o->writable_unless ? g_hash_table_lookup(values, o->writable_unless)
                                            : NULL;
        return o->writable_unless && !(ro && strcmp(ro, "on") == 0);
}

void emu_plan_free(EmuPlan *p)
{
        if (!p)
                return;
        g_strfreev(p->argv);
        if (p->values)
                g_hash_table_unref(p->values);
        json_decref(p->device_args);
        g_free(p);
}

/* A path the emulator will open: absolute, present, of the right type, and openable. */
static bool check_path(const EmuOptionSpec *o, const char *path, bool writable, GError **error)
{
        if (path[0] != '/') {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "%s=%s: the path must be absolute", o->name, path);
                return false;
        }
        /*
         * Look at the type through an O_PATH fd before really opening anything:
         * opening some devices has effects (a watchdog starts, a tape rewinds)
         * and a FIFO would block. Then reopen that same inode with the access
         * the emulator will need, to check permissions.
         */
        emu_autofd pfd = open(path, O_PATH | O_CLOEXEC);
        struct stat st;
        if (pfd < 0 || fstat(pfd, &st) < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH, "%s=%s: %s", o->name, path,
                            g_strerror(errno));
                return false;
        }
        if (o->directory && !S_ISDIR(st.st_mode)) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH, "%s=%s: not a directory",
                            o->name, path);
                return false;
        }
        if (!o->directory && !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "%s=%s: not a regular file or block device", o->name, path);
                return false;
        }
        if (o->directory) {
                /* A directory cannot be opened for writing: ask the kernel instead. */
                if (faccessat(pfd, "", writable ? R_OK | W_OK | X_OK : R_OK | X_OK,
                              AT_EMPTY_PATH | AT_EACCESS) < 0 &&
                    errno != EINVAL) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH, "%s=%s: %s", o->name,
                                    path, g_strerror(errno));
                        return false;
                }
                return true;
        }
        g_autofree char *proc = g_strdup_printf("/proc/self/fd/%d", pfd);
        emu_autofd fd = open(proc, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY |
                                           O_NONBLOCK);
        if (fd < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH, "%s=%s: cannot open %s: %s",
                            o->name, path, writable ? "for reading and writing" : "for reading",
                            g_strerror(errno));
                return false;
        }
        return true;
}

static EmuPlan *plan_new(const EmuKind *k, GHashTable *options, const char *socket_path,
                         bool check_paths, GError **error)
{
        g_autoptr(EmuPlan) p = g_new0(EmuPlan, 1);
        p->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        if (socket_path) /* "@" is no option name: ${socket} reads it */
                g_hash_table_insert(p->values, g_strdup("@socket"), g_strdup(socket_path));

        GHashTableIter it;
        gpointer key, val;
        g_hash_table_iter_init(&it, options);
        while (g_hash_table_iter_next(&it, &key, &val)) {
                const EmuOptionSpec *o = emu_kind_find_option(k, key);
                if (!o) {
                        g_autoptr(GString) known = g_string_new(NULL);
                        for (guint i = 0; i < k->options->len; i++) {
                                const EmuOptionSpec *ko = g_ptr_array_index(k->options, i);
                                g_string_append_printf(known, "%s%s", i ? ", " : "", ko->name);
                        }
                        g_set_error(error, EMU_ERROR, EMU_ERROR_UNKNOWN_OPTION,
                                    "unknown option '%s' for kind %s (known: %s)",
                                    (const char *)key, k->name, known->str);
                        return NULL;
                }
                if (strpbrk(val, "\n\r")) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                                    "option %s: line breaks are not allowed", o->name);
                        return NULL;
                }
                char *norm = emu_option_normalise(k, o, val, error);
                if (!norm)
                        return NULL;
                g_hash_table_insert(p->values, g_strdup(key), norm);
        }

        for (guint i = 0; i < k->options->len; i++) {
                const EmuOptionSpec *o = g_ptr_array_index(k->options, i);
                if (g_hash_table_contains(p->values, o->name))
                        continue;
                if (o->required) {
                        g_autofree char *what = o->description
                                                        ? g_strdup_printf(" (%s)", o->description)
                                                        : g_strdup("");
                        g_set_error(error, EMU_ERROR, EMU_ERROR_MISSING_OPTION,
                                    "option '%s'%s is required for kind %s", o->name, what,
                                    k->name);
                        return NULL;
                }
                if (o->default_value)
                        g_hash_table_insert(p->values, g_strdup(o->name),
                                            g_strdup(o->default_value));
        }

        for (guint i = 0; i < k->options->len; i++) {
                const EmuOptionSpec *o = g_ptr_array_index(k->options, i);
                const char *v = g_hash_table_lookup(p->values, o->name);
                if (o->type != EMU_OPT_PATH || !v || !check_paths)
                        continue;
                if (!check_path(o, v, emu_option_writable(o, p->values), error))
                        return NULL;
                /* The emulator gets the canonical path: a sandbox binds the file there,
                 * not at the symlinks (/dev/disk/by-id/...) that lead to it. */
                g_autofree char *real = realpath(v, NULL);
                if (real && strcmp(real, v) != 0)
                        g_hash_table_insert(p->values, g_strdup(o->name), g_steal_pointer(&real));
        }

        size_t n = g_strv_length(k->argv);
        p->argv = g_new0(char *, n + 2);
        p->argv[0] = g_strdup(k->binary);
        for (size_t i = 0; i < n; i++) {
                g_autoptr(GString) out = g_string_new(NULL);
                if (!emu_template_expand(k, k->argv[i], p->values, true, out, error))
                        return NULL;
                p->argv[i + 1] = g_string_free(g_steal_pointer(&out), FALSE);
        }

        p->device_args = json_pack("{s:s}", "driver", k->driver);
        const char *pname;
        json_t *pval;
        json_object_foreach (k->device_properties, pname, pval) {
                json_t *v = emu_template_render(k, pval, p->values, error);
                if (!v)
                        return NULL;
                json_object_set_new(p->device_args, pname, v);
        }
        return g_steal_pointer(&p);
}

EmuPlan *emu_plan_new(const EmuKind *k, GHashTable *options, GError **error)
{
        return plan_new(k, options, NULL, true, error);
}

EmuPlan *emu_plan_new_unchecked(const EmuKind *k, GHashTable *options, GError **error)
{
        return plan_new(k, options, NULL, false, error);
}

EmuPlan *emu_plan_new_at(const EmuKind *k, GHashTable *options, const char *socket_path,
                         bool check_paths, GError **error)
{
        return plan_new(k, options, socket_path, check_paths, error);
}
