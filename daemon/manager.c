/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * manager: the registry of VMs and emulators, the QMP connection to each
 * VM's QEMU, and the checks every request passes before anything changes.
 *
 * A request that fails validation leaves no trace: no VM, no emulator, no
 * file and no process. Long operations report through a DoneFunc.
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "bus-service.h"
#include "emulator-internal.h"
#include "confine.h"
#include "qmp-service.h"
#include "state.h"
#include "emu-error.h"
#include "emu-id.h"
#include "emu-log.h"
#include "manager.h"
#include "emu-util.h"

const char *vm_state_name(VmState s)
{
        static const char *const names[] = { "connecting", "connected", "lost" };
        return s < G_N_ELEMENTS(names) ? names[s] : "?";
}

static void done_error(DoneFunc done, void *userdata, GError *error)
{
        g_autoptr(GError) err = error;
        done(userdata, err);
}

static void vm_free(Vm *vm)
{
        if (!vm)
                return;
        qmp_service_stop(vm);
        emu_qmp_client_free(vm->qmp);
        if (vm->extra_qmp)
                g_ptr_array_unref(vm->extra_qmp);
        g_strfreev(vm->extra_qmp_paths);
        if (vm->reserved)
                g_hash_table_unref(vm->reserved);
        g_free(vm->name);
        g_free(vm->qmp_path);
        g_free(vm->dir);
        g_free(vm);
}

/* Remove the VM's directory and whatever stale sockets it holds. */
static void remove_dir_tree(const char *dir)
{
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *entry;
        while (d && (entry = g_dir_read_name(d))) {
                g_autofree char *path = g_build_filename(dir, entry, NULL);
                if (g_unlink(path) < 0 && errno != ENOENT)
                        emu_warn(NULL, "cannot remove %s: %s", path, g_strerror(errno));
        }
        if (g_rmdir(dir) < 0 && errno != ENOENT)
                emu_warn(NULL, "cannot remove %s: %s", dir, g_strerror(errno));
}

static void vm_on_ready(EmuQmpClient *c, json_t *greeting, void *userdata)
{
        Vm *vm = userdata;
        EmuLogCtx ctx = { .vm = vm->name };
        vm->state = VM_CONNECTED;
        emu_info(&ctx, "connected to QEMU's QMP at %s", vm->qmp_path);
        g_autoptr(GError) err = NULL;
        if (!qmp_service_start(vm, &err))
                emu_warn(&ctx, "no QMP proxy socket: %s", err->message);
        state_save(vm->m);
        DoneFunc done = g_steal_pointer(&vm->add_done);
        if (done)
                done(vm->add_userdata, NULL);
        if (vm->adopting) {
                /* Now QEMU can tell which adopted emulators still have their device. */
                vm->adopting = false;
                g_autoptr(GList) all = g_hash_table_get_values(vm->m->emulators);
                for (GList *l = all; l; l = l->next) {
                        Emulator *e = l->data;
                        if (e->vm == vm && e->state == EMU_STATE_ADOPTING)
                                emulator_probe_device(e);
                }
        }
}

static void vm_on_event(EmuQmpClient *c, const char *name, json_t *data, void *userdata)
{
        Vm *vm = userdata;
        if (!g_str_equal(name, "DEVICE_DELETED"))
                return;
        const char *dev = json_string_value(json_object_get(data, "device"));
        GHashTableIter it;
        Emulator *e;
        g_hash_table_iter_init(&it, vm->m->emulators);
        while (dev && g_hash_table_iter_next(&it, NULL, (gpointer *)&e)) {
                if (e->vm == vm && g_str_equal(e->qdev_id, dev)) {
                        emulator_device_deleted(e);
                        return;
                }
        }
}

static void vm_lost(Vm *vm);

static void vm_on_closed(EmuQmpClient *c, const GError *reason, void *userdata)
{
        Vm *vm = userdata;
        Manager *m = vm->m;
        EmuLogCtx ctx = { .vm = vm->name };
        g_clear_pointer(&vm->qmp, emu_qmp_client_free); /* deferred by the client itself */

        if (vm->adopting) {
                emu_warn(&ctx, "cannot reconnect to QEMU (%s); marking the VM lost",
                         reason ? reason->message : "closed");
                vm_lost(vm);
                return;
        }
        DoneFunc done = g_steal_pointer(&vm->add_done);
        if (done) {
                /* AddVM never completed: the VM was never there. */
                void *add_userdata = vm->add_userdata;
                g_autofree char *name = g_strdup(vm->name);
                remove_dir_tree(vm->dir);
                g_hash_table_remove(m->vms, name); /* frees vm */
                done(add_userdata, reason);
                return;
        }

        emu_warn(&ctx, "lost QEMU's QMP connection (%s); stopping its emulators",
                 reason ? reason->message : "closed");
        vm_lost(vm);
}

/* QEMU is gone: its emulators have nothing left to serve. */
static void vm_lost(Vm *vm)
{
        Manager *m = vm->m;
        vm->state = VM_LOST;
        vm->adopting = false;
        GHashTableIter it;
        Emulator *e;
        g_autoptr(GPtrArray) victims = g_ptr_array_new();
        g_hash_table_iter_init(&it, m->emulators);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&e))
                if (e->vm == vm)
                        g_ptr_array_add(victims, e);
        for (guint i = 0; i < victims->len; i++)
                emulator_vm_lost(g_ptr_array_index(victims, i));
}

static Vm *vm_new(Manager *m, const char *name, const char *qmp_path,
                  const char *const *extra_paths);
static void vm_connect(Vm *vm, int fd, GArray *extra_fds);

static const EmuQmpClientOps vm_qmp_ops = {
        .ready = vm_on_ready,
        .event = vm_on_event,
        .closed = vm_on_closed,
};

/* Check the paths and connect to each; returns the fds, or NULL with *error set. */
static GArray *connect_monitors(const char *const *paths, GError **error)
{
        g_autoptr(GArray) fds = g_array_new(FALSE, FALSE, sizeof(int));
        g_array_set_clear_func(fds, (GDestroyNotify)emu_closep);
        for (size_t i = 0; paths[i]; i++) {
                if (paths[i][0] != '/') {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                                    "QMP socket path '%s' must be absolute", paths[i]);
                        return NULL;
                }
                for (size_t j = 0; j < i; j++)
                        if (g_str_equal(paths[i], paths[j])) {
                                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                                            "QMP socket %s is named twice", paths[i]);
                                return NULL;
                        }
                int fd = emu_qmp_connect_unix(paths[i], error);
                if (fd < 0)
                        return NULL;
                g_array_append_val(fds, fd);
        }
        return g_steal_pointer(&fds);
}

void manager_add_vm(Manager *m, const char *name, const char *const *qmp_paths, DoneFunc done,
                    void *userdata)
{
        if (m->shutting_down)
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_SHUTTING_DOWN,
                                              "emud is shutting down"));
        if (!emu_id_valid(name))
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_INVALID_ID,
                                              "invalid VM name '%s': use %s", name,
                                              EMU_ID_RULE));
        if (g_hash_table_contains(m->vms, name))
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_EXISTS,
                                              "VM %s is already registered", name));
        if (!qmp_paths || !qmp_paths[0])
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_BAD_PATH,
                                              "VM %s: no QMP socket given", name));

        GError *err = NULL;
        g_autoptr(GArray) fds = connect_monitors(qmp_paths, &err);
        if (!fds)
                return done_error(done, userdata, err);

        g_autofree char *dir = g_build_filename(m->cfg->runtime_dir, "vm", name, NULL);
        remove_dir_tree(dir); /* leftovers of an emud that died */
        if (g_mkdir_with_parents(dir, 0711) < 0) {
                int e = errno;
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_FAILED,
                                              "cannot create %s: %s", dir, g_strerror(e)));
        }
        Vm *vm = vm_new(m, name, qmp_paths[0], qmp_paths + 1);
        vm->add_done = done;
        vm->add_userdata = userdata;
        int fd = g_array_index(fds, int, 0);
        g_array_index(fds, int, 0) = -1;
        g_array_remove_index(fds, 0);
        vm_connect(vm, fd, fds);
}

static Vm *vm_new(Manager *m, const char *name, const char *qmp_path,
                  const char *const *extra_paths)
{
        Vm *vm = g_new0(Vm, 1);
        vm->m = m;
        vm->name = g_strdup(name);
        vm->qmp_path = g_strdup(qmp_path);
        vm->extra_qmp_paths = g_strdupv((char **)extra_paths);
        vm->extra_qmp = g_ptr_array_new_with_free_func((GDestroyNotify)emu_qmp_client_free);
        vm->dir = g_build_filename(m->cfg->runtime_dir, "vm", name, NULL);
        vm->state = VM_CONNECTING;
        vm->reserved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_hash_table_insert(m->vms, vm->name, vm);
        return vm;
}

static void extra_on_closed(EmuQmpClient *c, const GError *reason, void *userdata)
{
        Vm *vm = userdata;
        EmuLogCtx ctx = { .vm = vm->name };
        emu_warn(&ctx, "lost a QMP monitor of the proxy: %s; its clients move to another",
                 reason ? reason->message : "closed");
}

/* extra_fds: connected sockets of extra_qmp_paths, in order; -1 for one that is not. */
static void vm_connect(Vm *vm, int fd, GArray *extra_fds)
{
        static const EmuQmpClientOps extra_ops = { .closed = extra_on_closed };
        g_autofree char *label = g_strdup_printf("QEMU QMP %s", vm->qmp_path);
        vm->qmp = emu_qmp_client_new(fd, label, vm->m->cfg->qmp_timeout_ms, &vm_qmp_ops, vm);
        for (guint i = 0; extra_fds && i < extra_fds->len; i++) {
                int *xfd = &g_array_index(extra_fds, int, i);
                if (*xfd < 0)
                        continue;
                g_autofree char *xlabel = g_strdup_printf("QEMU QMP %s", vm->extra_qmp_paths[i]);
                g_ptr_array_add(vm->extra_qmp,
                                emu_qmp_client_new(emu_steal_fd(xfd), xlabel,
                                                   vm->m->cfg->qmp_timeout_ms, &extra_ops, vm));
        }
}

Vm *manager_adopt_vm(Manager *m, const char *name, const char *qmp_path,
                     const char *const *extra_qmp_paths)
{
        EmuLogCtx ctx = { .vm = name };
        Vm *vm = vm_new(m, name, qmp_path, extra_qmp_paths);
        if (g_mkdir_with_parents(vm->dir, 0711) < 0)
                emu_warn(&ctx, "cannot create %s: %s", vm->dir, g_strerror(errno));
        g_autoptr(GError) err = NULL;
        int fd = emu_qmp_connect_unix(qmp_path, &err);
        if (fd < 0) {
                emu_warn(&ctx, "QEMU is gone (%s); marking the VM lost", err->message);
                vm->state = VM_LOST;
                return vm;
        }
        emu_info(&ctx, "reconnecting to QEMU's QMP at %s", qmp_path);
        vm->adopting = true;
        g_autoptr(GArray) extra_fds = g_array_new(FALSE, FALSE, sizeof(int));
        g_array_set_clear_func(extra_fds, (GDestroyNotify)emu_closep);
        for (size_t i = 0; extra_qmp_paths && extra_qmp_paths[i]; i++) {
                g_autoptr(GError) xerr = NULL;
                int xfd = emu_qmp_connect_unix(extra_qmp_paths[i], &xerr);
                if (xfd < 0)
                        emu_warn(&ctx, "QMP monitor for the proxy: %s", xerr->message);
                g_array_append_val(extra_fds, xfd);
        }
        vm_connect(vm, fd, extra_fds);
        return vm;
}

void manager_vm_lost_emulators(Vm *vm)
{
        vm_lost(vm);
}

bool manager_remove_vm(Manager *m, const char *name, GError **error)
{
        Vm *vm = g_hash_table_lookup(m->vms, name);
        if (!vm) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_UNKNOWN_VM, "no VM named '%s'", name);
                return false;
        }
        if (vm->state == VM_CONNECTING) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BUSY,
                            "VM %s is still being added", name);
                return false;
        }
        g_autoptr(GString) users = g_string_new(NULL);
        GHashTableIter it;
        Emulator *e;
        g_hash_table_iter_init(&it, m->emulators);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&e))
                if (e->vm == vm)
                        g_string_append_printf(users, "%s%s", users->len ? ", " : "", e->id);
        if (users->len) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BUSY,
                            "VM %s still has emulators (%s); kill them first", name,
                            users->str);
                return false;
        }
        EmuLogCtx ctx = { .vm = vm->name };
        emu_info(&ctx, "removed");
        remove_dir_tree(vm->dir);
        g_hash_table_remove(m->vms, name);
        state_save(m);
        return true;
}

void manager_spawn(Manager *m, const char *vm_name, const char *kind_name, const char *id,
                   GHashTable *options, DoneFunc done, void *userdata)
{
        if (m->shutting_down)
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_SHUTTING_DOWN,
                                              "emud is shutting down"));
        if (!emu_id_valid(id))
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_INVALID_ID,
                                              "invalid emulator id '%s': use %s", id,
                                              EMU_ID_RULE));
        if (g_hash_table_contains(m->emulators, id))
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_EXISTS,
                                              "an emulator with id '%s' already exists", id));
        Vm *vm = g_hash_table_lookup(m->vms, vm_name);
        if (!vm)
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_UNKNOWN_VM,
                                              "no VM named '%s'", vm_name));
        if (vm->state != VM_CONNECTED)
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_VM_LOST,
                                              "VM %s is %s, not connected", vm_name,
                                              vm_state_name(vm->state)));
        const EmuKind *kind = g_hash_table_lookup(m->kinds, kind_name);
        if (!kind) {
                g_autofree char **names =
                        (char **)g_hash_table_get_keys_as_array(m->kinds, NULL);
                g_autofree char *list = g_strjoinv(", ", names);
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_UNKNOWN_KIND,
                                              "unknown emulator kind '%s' (known: %s)",
                                              kind_name, list));
        }
        /* "restart" is emud's, not the kind's: take it out before the kind checks options. */
        EmuRestartPolicy restart;
        g_autofree char *restart_text = NULL;
        gpointer key = NULL;
        if (g_hash_table_steal_extended(options, "restart", &key, (gpointer *)&restart_text))
                g_free(key);
        if (!manager_parse_restart(restart_text ? restart_text : kind->restart, &restart))
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                                              "restart=%s is not valid: must be no, "
                                              "on-failure or always",
                                              restart_text));
        EmuSeccompMode seccomp = EMU_SECCOMP_ENFORCE;
        g_autofree char *mode = NULL;
        if (g_hash_table_steal_extended(options, "seccomp", &key, (gpointer *)&mode))
                g_free(key);
        if (mode && !emu_seccomp_mode_from_name(mode, &seccomp))
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                                              "seccomp=%s is not valid: must be enforce, log "
                                              "or learn",
                                              mode));
        GError *err = NULL;
        EmuPlan *plan = emu_plan_new(kind, options, &err);
        if (!plan)
                return done_error(done, userdata, err);
        EmuPolicy *policy = confine_load_policy(m, kind, &err);
        if (err) {
                emu_plan_free(plan);
                return done_error(done, userdata, err);
        }

        Emulator *e = emulator_new(m, vm, kind, id, plan, restart, policy, seccomp);
        int r = bus_emulator_add(m, e);
        if (r < 0) {
                EmuLogCtx ctx = { .vm = vm->name, .emulator = id };
                emu_warn(&ctx, "cannot export D-Bus object: %s", g_strerror(-r));
        }
        emulator_start(e, done, userdata);
}

void manager_kill(Manager *m, const char *id, DoneFunc done, void *userdata)
{
        Emulator *e = g_hash_table_lookup(m->emulators, id);
        if (!e)
                return done_error(done, userdata,
                                  g_error_new(EMU_ERROR, EMU_ERROR_UNKNOWN_EMULATOR,
                                              "no emulator with id '%s'", id));
        emulator_kill(e, done, userdata);
}

bool manager_parse_restart(const char *text, EmuRestartPolicy *ret)
{
        static const char *const names[] = { "no", "on-failure", "always" };
        for (size_t i = 0; text && i < G_N_ELEMENTS(names); i++) {
                if (g_str_equal(text, names[i])) {
                        *ret = (EmuRestartPolicy)i;
                        return true;
                }
        }
        return false;
}

static void shutdown_done(void *userdata, const GError *error)
{
        (void)userdata;
        (void)error; /* emulator.c has logged it */
}

void manager_shutdown(Manager *m, bool stop_emulators)
{
        m->shutting_down = true;
        if (!stop_emulators) {
                /* Emulators belong to their VMs: they run on, and the next emud adopts them. */
                state_save(m);
                if (m->idle_cb)
                        m->idle_cb(m);
                return;
        }
        g_autoptr(GList) all = g_hash_table_get_values(m->emulators);
        for (GList *l = all; l; l = l->next) {
                Emulator *e = l->data;
                if (!e->kill_done && e->state != EMU_STATE_STOPPING)
                        emulator_kill(e, shutdown_done, NULL);
        }
        if (g_hash_table_size(m->emulators) == 0 && m->idle_cb)
                m->idle_cb(m);
}

/*
 * Only when the text changes: sd_notify() blocks once the receiver's queue is
 * full, so emud sends as little as it can.
 */
static void notify_status(Manager *m)
{
        g_autofree char *status = manager_status(m);
        if (g_strcmp0(status, m->last_status) == 0)
                return;
        sd_notifyf(0, "STATUS=%s", status);
        g_free(m->last_status);
        m->last_status = g_steal_pointer(&status);
}

void manager_emulator_seccomp(Manager *m, Emulator *e, const EmuSeccompReport *r,
                              const char *message)
{
        bus_emulator_changed(m, e);
        qmp_service_emulator_seccomp(e, r, message);
}

void manager_emulator_changed(Manager *m, Emulator *e)
{
        bus_emulator_changed(m, e);
        qmp_service_emulator_state(e);
        notify_status(m);
        state_save_soon(m);
}

void manager_emulator_gone(Manager *m, Emulator *e)
{
        bus_emulator_remove(m, e);
        g_hash_table_remove(m->emulators, e->id);
        notify_status(m);
        state_save_soon(m);
        if (m->shutting_down && g_hash_table_size(m->emulators) == 0 && m->idle_cb)
                m->idle_cb(m);
}

char *manager_status(Manager *m)
{
        guint plugged = 0, restarting = 0, failed = 0;
        GHashTableIter it;
        Emulator *e;
        g_hash_table_iter_init(&it, m->emulators);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&e)) {
                plugged += e->state == EMU_STATE_PLUGGED;
                restarting += e->state == EMU_STATE_RESTARTING;
                failed += e->state == EMU_STATE_FAILED;
        }
        return g_strdup_printf("%u VMs, %u emulators (%u plugged, %u restarting, %u failed)",
                               g_hash_table_size(m->vms), g_hash_table_size(m->emulators),
                               plugged, restarting, failed);
}

int manager_new(EmudConfig *cfg, GHashTable *kinds, Manager **ret)
{
        Manager *m = g_new0(Manager, 1);
        m->cfg = cfg;
        m->kinds = g_hash_table_ref(kinds);
        m->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)vm_free);
        m->emulators = g_hash_table_new(g_str_hash, g_str_equal);
        *ret = m;
        return 0;
}

void manager_free(Manager *m)
{
        if (!m)
                return;
        /*
         * Emulators that still run belong to their VMs and stay, with their
         * sockets, for the next emud to adopt; the state file says so.
         */
        GHashTableIter it;
        Emulator *e;
        g_hash_table_iter_init(&it, m->emulators);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&e))
                emulator_free(e);
        g_hash_table_unref(m->emulators);
        g_hash_table_unref(m->vms);
        g_hash_table_unref(m->kinds);
        sd_bus_unref(m->bus);
        g_free(m->last_status);
        g_free(m->last_state);
        if (m->state_idle)
                g_source_remove(m->state_idle);
        g_free(m);
}
