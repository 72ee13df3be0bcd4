/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * state: the file that lets a restarted emud adopt what the last one ran.
 * An observer: it renders the manager's VMs and emulators at the end of
 * every dispatch pass and writes the file when that text changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "emu-log.h"
#include "emu-util.h"
#include "state.h"

struct StateFile {
        Manager *m;
        char *path;
        char *last;             /* the content last written */
        bool error_logged;
};

static void append_line(GString *out, json_t *obj)
{
        emu_autofree_c *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        g_string_append(out, text);
        g_string_append_c(out, '\n');
}

static char *render(Manager *m)
{
        g_autoptr(GString) out = g_string_new(NULL);
        g_autoptr(GPtrArray) vms = manager_sorted_vms(m);
        for (guint i = 0; i < vms->len; i++) {
                const Vm *vm = g_ptr_array_index(vms, i);
                /* AddVM has not succeeded yet: not there, or still only defined. */
                bool defined = vm->state == VM_DEFINED || (vm->add_done && vm->was_defined);
                if (vm->add_done && !defined)
                        continue;
                /* A defined VM (cold-plug) may have no path yet. */
                g_autoptr(json_t) o = json_pack("{s:s, s:s?, s:b}", "vm", vm->name, "qmp",
                                                vm->qmp_path, "defined", defined);
                if (vm->libvirt)
                        json_object_set_new(o, "libvirt", json_true());
                if (vm->extra_qmp_paths && vm->extra_qmp_paths[0]) {
                        json_t *extra = json_array();
                        for (char **p = vm->extra_qmp_paths; *p; p++)
                                json_array_append_new(extra, json_string(*p));
                        json_object_set_new(o, "qmp-extra", extra);
                }
                append_line(out, o);
        }

        g_autoptr(GPtrArray) emulators = manager_sorted_emulators(m);
        for (guint i = 0; i < emulators->len; i++) {
                const Emulator *e = g_ptr_array_index(emulators, i);
                if (e->state == EMU_STATE_GONE)
                        continue;
                json_t *options = json_object();
                GHashTableIter it;
                gpointer key, value;
                g_hash_table_iter_init(&it, e->plan->values);
                while (g_hash_table_iter_next(&it, &key, &value))
                        if (*(const char *)key != '@') /* emud's own, like @socket */
                                json_object_set_new(options, key, json_string(value));
                g_autoptr(json_t) o = json_pack(
                        "{s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:s, s:s?, s:I}", "emulator",
                        e->id, "vm", e->vm->name, "kind", e->kind->name, "options", options,
                        "restart", emu_restart_name(e->restart), "pid", (json_int_t)e->proc.pid,
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

static void save(StateFile *sf)
{
        g_autofree char *text = render(sf->m);
        if (g_strcmp0(text, sf->last) == 0)
                return;
        /* Nothing to adopt is no file at all. */
        int r = text[0] ? write_atomically(sf->path, text)
                        : (unlink(sf->path) < 0 && errno != ENOENT ? -errno : 0);
        if (r < 0) {
                if (!sf->error_logged)
                        emu_warn(NULL, "cannot write %s: %s; a restarted emud will not be "
                                 "able to adopt the emulators", sf->path, g_strerror(-r));
                sf->error_logged = true;
                return;
        }
        sf->error_logged = false;
        g_free(sf->last);
        sf->last = g_steal_pointer(&text);
}

static void on_flushed(void *userdata)
{
        save(userdata);
}

static const ManagerObserver observer = {
        .flushed = on_flushed,
};

StateFile *state_file_new(Manager *m, const char *path)
{
        StateFile *sf = g_new0(StateFile, 1);
        sf->m = m;
        sf->path = g_strdup(path);
        /* What is on disk already, so that nothing is written until something changes. */
        if (!g_file_get_contents(path, &sf->last, NULL, NULL))
                sf->last = g_strdup("");
        manager_add_observer(m, &observer, sf);
        return sf;
}

void state_file_free(StateFile *sf)
{
        if (!sf)
                return;
        g_free(sf->path);
        g_free(sf->last);
        g_free(sf);
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
                bool defined = o && json_is_true(json_object_get(o, "defined"));
                bool libvirt = o && json_is_true(json_object_get(o, "libvirt"));
                if (o && vm && !emulator && (str(o, "qmp") || defined || libvirt)) {
                        StateVm *v = g_new0(StateVm, 1);
                        v->name = g_strdup(vm);
                        v->qmp = g_strdup(str(o, "qmp"));
                        v->defined = defined;
                        v->libvirt = libvirt;
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
