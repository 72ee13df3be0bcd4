/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * state: the file that lets a restarted emud adopt what the last one ran.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "emu-log.h"
#include "emu-util.h"
#include "state.h"

char *state_path(const Manager *m)
{
        return g_build_filename(m->cfg->runtime_dir, "state.jsonl", NULL);
}

static const char *restart_name(EmuRestartPolicy r)
{
        static const char *const names[] = { "no", "on-failure", "always" };
        return names[r];
}

static gint by_name(gconstpointer a, gconstpointer b)
{
        return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

static void append_line(GString *out, json_t *obj)
{
        emu_autofree_c *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        g_string_append(out, text);
        g_string_append_c(out, '\n');
}

static char *render(Manager *m)
{
        g_autoptr(GString) out = g_string_new(NULL);
        g_autoptr(GPtrArray) names = g_ptr_array_new();
        GHashTableIter it;
        gpointer key, value;
        g_hash_table_iter_init(&it, m->vms);
        while (g_hash_table_iter_next(&it, &key, NULL))
                g_ptr_array_add(names, key);
        g_ptr_array_sort(names, by_name);
        for (guint i = 0; i < names->len; i++) {
                Vm *vm = g_hash_table_lookup(m->vms, g_ptr_array_index(names, i));
                g_autoptr(json_t) o = json_pack("{s:s, s:s}", "vm", vm->name, "qmp",
                                                vm->qmp_path);
                if (vm->extra_qmp_paths && vm->extra_qmp_paths[0]) {
                        json_t *extra = json_array();
                        for (char **p = vm->extra_qmp_paths; *p; p++)
                                json_array_append_new(extra, json_string(*p));
                        json_object_set_new(o, "qmp-extra", extra);
                }
                append_line(out, o);
        }

        g_ptr_array_set_size(names, 0);
        g_hash_table_iter_init(&it, m->emulators);
        while (g_hash_table_iter_next(&it, &key, NULL))
                g_ptr_array_add(names, key);
        g_ptr_array_sort(names, by_name);
        for (guint i = 0; i < names->len; i++) {
                Emulator *e = g_hash_table_lookup(m->emulators, g_ptr_array_index(names, i));
                if (e->state == EMU_STATE_GONE)
                        continue;
                json_t *options = json_object();
                g_hash_table_iter_init(&it, e->plan->values);
                while (g_hash_table_iter_next(&it, &key, &value))
                        json_object_set_new(options, key, json_string(value));
                g_autoptr(json_t) o = json_pack(
                        "{s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:s, s:s?, s:I}", "emulator",
                        e->id, "vm", e->vm->name, "kind", e->kind->name, "options", options,
                        "restart", restart_name(e->restart), "pid", (json_int_t)e->proc.pid,
                        "start-time", (json_int_t)e->proc.start_time, "state",
                        emu_state_name(e->state), "slot", e->slot, "restarts",
                        (json_int_t)e->restarts);
                json_object_set_new(o, "seccomp",
                                    json_string(emu_seccomp_mode_name(e->seccomp_mode)));
                const char *cg = e->sandbox ? emu_sandbox_cgroup(e->sandbox) : e->cgroup_path;
                if (cg)
                        json_object_set_new(o, "cgroup", json_string(cg));
                append_line(out, o);
        }
        return g_string_free(g_steal_pointer(&out), FALSE);
}

/*
 * Write to a temporary file and rename it over the old one, so that a reader
 * (an emud started after this one died) sees either state whole. No fsync:
 * the file only has to outlive emud, not the machine, since the emulators it
 * names die with the machine too; and the runtime directory is a tmpfs in
 * production. The page cache keeps a renamed file across a crash of emud,
 * and an fsync here cost 1-5 ms of the main loop on each spawn step.
 */
static int write_atomically(const char *path, const char *data)
{
        g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
        emu_autofd fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        size_t len = strlen(data), done = 0;
        while (done < len) {
                ssize_t n = write(fd, data + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                done += (size_t)n;
        }
        if (rename(tmp, path) < 0)
                return -errno;
        return 0;
}

int state_save(Manager *m)
{
        if (m->state_idle) {
                g_source_remove(m->state_idle);
                m->state_idle = 0;
        }
        g_autofree char *text = render(m);
        if (g_strcmp0(text, m->last_state) == 0)
                return 0;
        g_autofree char *path = state_path(m);
        int r = write_atomically(path, text);
        if (r < 0) {
                if (!m->state_error_logged)
                        emu_warn(NULL, "cannot write %s: %s; a restarted emud will not be "
                                 "able to adopt the emulators", path, g_strerror(-r));
                m->state_error_logged = true;
                return r;
        }
        m->state_error_logged = false;
        g_free(m->last_state);
        m->last_state = g_steal_pointer(&text);
        return 0;
}

static gboolean save_idle(gpointer userdata)
{
        Manager *m = userdata;
        m->state_idle = 0;
        state_save(m);
        return G_SOURCE_REMOVE;
}

void state_save_soon(Manager *m)
{
        if (!m->state_idle)
                m->state_idle = g_idle_add_full(G_PRIORITY_HIGH, save_idle, m, NULL);
}

static void state_vm_free(StateVm *v)
{
        g_free(v->name);
        g_free(v->qmp);
        g_strfreev(v->qmp_extra);
        g_free(v);
}

static void state_emulator_free(StateEmulator *e)
{
        g_free(e->id);
        g_free(e->vm);
        g_free(e->kind);
        if (e->options)
                g_hash_table_unref(e->options);
        g_free(e->restart);
        g_free(e->state);
        g_free(e->slot);
        g_free(e->seccomp);
        g_free(e->cgroup);
        g_free(e);
}

void state_snapshot_free(StateSnapshot *s)
{
        if (!s)
                return;
        g_ptr_array_unref(s->vms);
        g_ptr_array_unref(s->emulators);
        g_ptr_array_unref(s->problems);
        g_free(s);
}

static const char *str(json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static bool parse_emulator(json_t *o, StateEmulator **ret)
{
        json_t *options = json_object_get(o, "options");
        json_t *pid = json_object_get(o, "pid"), *st = json_object_get(o, "start-time");
        if (!str(o, "vm") || !str(o, "kind") || !str(o, "state") || !str(o, "restart") ||
            !json_is_object(options) || !json_is_integer(pid) || !json_is_integer(st) ||
            json_integer_value(pid) < 0 || json_integer_value(pid) > G_MAXINT32 ||
            json_integer_value(st) < 0)
                return false;
        StateEmulator *e = g_new0(StateEmulator, 1);
        e->id = g_strdup(str(o, "emulator"));
        e->vm = g_strdup(str(o, "vm"));
        e->kind = g_strdup(str(o, "kind"));
        e->restart = g_strdup(str(o, "restart"));
        e->state = g_strdup(str(o, "state"));
        e->slot = g_strdup(str(o, "slot"));
        e->pid = (pid_t)json_integer_value(pid);
        e->start_time = (guint64)json_integer_value(st);
        e->restarts = (unsigned)json_integer_value(json_object_get(o, "restarts"));
        e->seccomp = g_strdup(str(o, "seccomp"));
        e->cgroup = g_strdup(str(o, "cgroup"));
        e->options = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        const char *k;
        json_t *v;
        json_object_foreach (options, k, v) {
                if (!json_is_string(v)) {
                        state_emulator_free(e);
                        return false;
                }
                g_hash_table_insert(e->options, g_strdup(k), g_strdup(json_string_value(v)));
        }
        *ret = e;
        return true;
}

StateSnapshot *state_load(const char *path)
{
        StateSnapshot *s = g_new0(StateSnapshot, 1);
        s->vms = g_ptr_array_new_with_free_func((GDestroyNotify)state_vm_free);
        s->emulators = g_ptr_array_new_with_free_func((GDestroyNotify)state_emulator_free);
        s->problems = g_ptr_array_new_with_free_func(g_free);

        g_autofree char *data = NULL;
        g_autoptr(GError) err = NULL;
        if (!g_file_get_contents(path, &data, NULL, &err)) {
                if (!g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        g_ptr_array_add(s->problems, g_strdup(err->message));
                return s;
        }
        g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
        for (guint n = 0; lines[n]; n++) {
                if (!*lines[n])
                        continue;
                json_error_t jerr;
                g_autoptr(json_t) o = json_loads(lines[n], 0, &jerr);
                const char *vm = o ? str(o, "vm") : NULL;
                const char *emulator = o ? str(o, "emulator") : NULL;
                StateEmulator *e = NULL;
                if (o && vm && !emulator && str(o, "qmp")) {
                        StateVm *v = g_new0(StateVm, 1);
                        v->name = g_strdup(vm);
                        v->qmp = g_strdup(str(o, "qmp"));
                        g_autoptr(GStrvBuilder) extra = g_strv_builder_new();
                        size_t k;
                        json_t *x;
                        json_array_foreach(json_object_get(o, "qmp-extra"), k, x)
                                if (json_is_string(x) && json_string_value(x)[0] == '/')
                                        g_strv_builder_add(extra, json_string_value(x));
                        v->qmp_extra = g_strv_builder_end(extra);
                        g_ptr_array_add(s->vms, v);
                } else if (o && emulator && parse_emulator(o, &e)) {
                        g_ptr_array_add(s->emulators, e);
                } else {
                        g_ptr_array_add(s->problems,
                                        g_strdup_printf("%s:%u: %s", path, n + 1,
                                                        o ? "not a VM or emulator entry"
                                                          : jerr.text));
                }
        }
        return s;
}
