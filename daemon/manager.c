/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * manager: the registry of VMs and emulators, the checks every request
 * passes before anything changes, and the dispatch pass that carries what
 * the state machines recorded to the observers (D-Bus, QMP, the state
 * file, the service manager, systemd scopes).
 *
 * A request that fails validation leaves no trace: no VM, no emulator, no
 * file and no process. Every answer goes out from the dispatch pass, after
 * the observers have seen the change it reports, so that a client that
 * gets "plugged" and then asks finds it plugged.
 */
#include <errno.h>
#include <string.h>

#include "confine.h"
#include "emu-error.h"
#include "emu-id.h"
#include "emu-log.h"
#include "manager.h"

typedef struct {
        const ManagerObserver *ops;
        void *userdata;
} Observer;

#define FOR_EACH_OBSERVER(m, o)                                                            \
        for (Observer *o = (Observer *)(m)->observers->data;                               \
             o < (Observer *)(m)->observers->data + (m)->observers->len; o++)

void manager_add_observer(Manager *m, const ManagerObserver *ops, void *userdata)
{
        Observer o = { ops, userdata };
        g_array_append_val(m->observers, o);
}

static void answer_error(Manager *m, DoneFunc done, void *userdata, GError *error)
{
        g_autoptr(GError) err = error;
        dispatch_done(m->dispatch, done, userdata, err);
}

/* ---- the dispatch pass -------------------------------------------------- */

static void on_changed(void *userdata, void *object, unsigned mask)
{
        Manager *m = userdata;
        if (*(DispatchType *)object == DISPATCH_VM) {
                FOR_EACH_OBSERVER (m, o)
                        if (o->ops->vm_changed)
                                o->ops->vm_changed(o->userdata, object);
                return;
        }
        FOR_EACH_OBSERVER (m, o)
                if (o->ops->emulator_changed)
                        o->ops->emulator_changed(o->userdata, object, mask);
}

static void on_event(void *userdata, const char *vm_name, const char *name, json_t *data)
{
        Manager *m = userdata;
        Vm *vm = g_hash_table_lookup(m->vms, vm_name);
        if (!vm)
                return; /* removed since */
        FOR_EACH_OBSERVER (m, o)
                if (o->ops->event)
                        o->ops->event(o->userdata, vm, name, data);
}

static void finish_remove(Manager *m, Vm *vm);

static void on_collect(void *userdata, void *object)
{
        Manager *m = userdata;
        if (*(DispatchType *)object == DISPATCH_VM) {
                Vm *vm = object;
                FOR_EACH_OBSERVER (m, o)
                        if (o->ops->vm_changed)
                                o->ops->vm_changed(o->userdata, vm);
                vm_free(vm);
                return;
        }
        Emulator *e = object;
        FOR_EACH_OBSERVER (m, o)
                if (o->ops->emulator_removed)
                        o->ops->emulator_removed(o->userdata, e);
        g_hash_table_remove(m->emulators, e->id);
        Vm *vm = e->vm;
        emulator_free(e);
        finish_remove(m, vm);
}

static void on_flushed(void *userdata)
{
        Manager *m = userdata;
        FOR_EACH_OBSERVER (m, o)
                if (o->ops->flushed)
                        o->ops->flushed(o->userdata);
        if (m->shutting_down && m->idle_cb &&
            (m->leave_emulators || g_hash_table_size(m->emulators) == 0)) {
                void (*cb)(Manager *, void *) = g_steal_pointer(&m->idle_cb);
                cb(m, m->idle_userdata);
        }
}

static const DispatchOps dispatch_ops = {
        .changed = on_changed,
        .event = on_event,
        .collect = on_collect,
        .flushed = on_flushed,
};

/* ---- what the VMs say --------------------------------------------------- */

GPtrArray *manager_vm_emulators(Manager *m, Vm *vm)
{
        GPtrArray *out = g_ptr_array_new();
        GHashTableIter it;
        Emulator *e;
        g_hash_table_iter_init(&it, m->emulators);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&e))
                if (e->vm == vm)
                        g_ptr_array_add(out, e);
        return out;
}

static void unregister_vm(Manager *m, Vm *vm)
{
        g_hash_table_steal(m->vms, vm->name);
        vm->removed = true;
        vm_remove_dir(vm);
        dispatch_collect(m->dispatch, vm);
}

static void vm_ready(Vm *vm, void *userdata)
{
        Manager *m = userdata;
        /* Adopted emulators can now learn whether QEMU still has their device. */
        g_autoptr(GPtrArray) list = manager_vm_emulators(m, vm);
        for (guint i = 0; i < list->len; i++)
                emulator_vm_ready(g_ptr_array_index(list, i));
}

static void vm_closed(Vm *vm, const GError *reason, void *userdata)
{
        Manager *m = userdata;
        g_autoptr(GPtrArray) list = manager_vm_emulators(m, vm);
        if (vm->add_done) {
                /* AddVM never completed: the VM was never there. */
                DoneFunc done = g_steal_pointer(&vm->add_done);
                dispatch_done(m->dispatch, done, vm->add_userdata, reason);
                if (list->len == 0) {
                        unregister_vm(m, vm);
                        return;
                }
                /* Its prepared emulators still wait for a QEMU. */
                vm->state = VM_DEFINED;
                return;
        }
        /* QEMU is gone: its emulators have nothing left to serve. */
        for (guint i = 0; i < list->len; i++)
                emulator_vm_lost(g_ptr_array_index(list, i));
}

static void vm_device_deleted(Vm *vm, const char *qdev_id, void *userdata)
{
        Manager *m = userdata;
        g_autoptr(GPtrArray) list = manager_vm_emulators(m, vm);
        for (guint i = 0; i < list->len; i++) {
                Emulator *e = g_ptr_array_index(list, i);
                if (g_str_equal(e->qdev_id, qdev_id))
                        emulator_device_deleted(e);
        }
}

static const VmOps vm_ops = {
        .ready = vm_ready,
        .closed = vm_closed,
        .device_deleted = vm_device_deleted,
};

Vm *manager_new_vm(Manager *m, const char *name, const char *qmp_path,
                   const char *const *extra_paths)
{
        return vm_new(m->cfg, m->dispatch, &vm_ops, m, name, qmp_path, extra_paths);
}

void manager_register_vm(Manager *m, Vm *vm)
{
        g_hash_table_insert(m->vms, vm->name, vm);
        dispatch_mark(m->dispatch, vm, VM_DIRTY_STATE);
}

void manager_register_emulator(Manager *m, Emulator *e)
{
        g_hash_table_insert(m->emulators, e->id, e);
}

/* ---- requests ----------------------------------------------------------- */

static GError *refuse_when_shutting_down(Manager *m)
{
        return m->shutting_down ? g_error_new(EMU_ERROR, EMU_ERROR_SHUTTING_DOWN,
                                              "emud is shutting down")
                                : NULL;
}

void manager_add_vm(Manager *m, const char *name, const char *const *qmp_paths, DoneFunc done,
                    void *userdata)
{
        GError *err = refuse_when_shutting_down(m);
        if (err)
                return answer_error(m, done, userdata, err);
        if (!emu_id_valid(name))
                return answer_error(m, done, userdata,
                                    g_error_new(EMU_ERROR, EMU_ERROR_INVALID_ID,
                                                "invalid VM name '%s': use %s", name,
                                                EMU_ID_RULE));
        Vm *defined = g_hash_table_lookup(m->vms, name);
        if (defined && (defined->state != VM_DEFINED || defined->remove_done))
                return answer_error(m, done, userdata,
                                    g_error_new(EMU_ERROR, EMU_ERROR_EXISTS,
                                                "VM %s is already registered", name));
        if (!qmp_paths || !qmp_paths[0])
                return answer_error(m, done, userdata,
                                    g_error_new(EMU_ERROR, EMU_ERROR_BAD_PATH,
                                                "VM %s: no QMP socket given", name));
        g_autoptr(GArray) fds = vm_connect_monitors(qmp_paths, &err);
        if (!fds)
                return answer_error(m, done, userdata, err);
        if (defined) {
                /* Prepared emulators wait for it: its QEMU has started. */
                if (defined->wait_timer) {
                        g_source_remove(defined->wait_timer);
                        defined->wait_timer = 0;
                }
                vm_set_paths(defined, qmp_paths);
                defined->state = VM_CONNECTING;
                defined->was_defined = true;
                defined->add_done = done;
                defined->add_userdata = userdata;
                int fd = g_array_index(fds, int, 0);
                g_array_index(fds, int, 0) = -1;
                g_array_remove_index(fds, 0);
                vm_connect(defined, fd, fds);
                return;
        }

        Vm *vm = manager_new_vm(m, name, qmp_paths[0], qmp_paths + 1);
        int r = vm_make_dir(vm, true);
        if (r < 0) {
                err = g_error_new(EMU_ERROR, EMU_ERROR_FAILED, "cannot create %s: %s", vm->dir,
                                  g_strerror(-r));
                vm_free(vm);
                return answer_error(m, done, userdata, err);
        }
        manager_register_vm(m, vm);
        vm->add_done = done;
        vm->add_userdata = userdata;
        int fd = g_array_index(fds, int, 0);
        g_array_index(fds, int, 0) = -1;
        g_array_remove_index(fds, 0);
        vm_connect(vm, fd, fds);
}

Vm *manager_find_vm(Manager *m, const char *name, GError **error)
{
        Vm *vm = name ? g_hash_table_lookup(m->vms, name) : NULL;
        if (!vm)
                g_set_error(error, EMU_ERROR, EMU_ERROR_UNKNOWN_VM, "no VM named '%s'",
                            name ? name : "");
        return vm;
}

Emulator *manager_find_emulator(Manager *m, const char *vm, const char *id, GError **error)
{
        Emulator *e = id ? g_hash_table_lookup(m->emulators, id) : NULL;
        if (e && vm && !g_str_equal(e->vm->name, vm))
                e = NULL;
        if (!e) {
                if (vm)
                        g_set_error(error, EMU_ERROR, EMU_ERROR_UNKNOWN_EMULATOR,
                                    "no emulator with id '%s' on VM %s", id ? id : "", vm);
                else
                        g_set_error(error, EMU_ERROR, EMU_ERROR_UNKNOWN_EMULATOR,
                                    "no emulator with id '%s'", id ? id : "");
        }
        return e;
}

static void remove_done_kill(void *userdata, const GError *error)
{
        (void)userdata;
        (void)error; /* the emulator has logged it; the VM goes when it is collected */
}

/* The last emulator of a VM being removed was collected: the VM goes too. */
static void finish_remove(Manager *m, Vm *vm)
{
        g_autoptr(GPtrArray) users = manager_vm_emulators(m, vm);
        if (!vm->remove_done || users->len)
                return;
        EmuLogCtx ctx = { .vm = vm->name };
        emu_info(&ctx, "removed");
        DoneFunc done = g_steal_pointer(&vm->remove_done);
        dispatch_done(m->dispatch, done, vm->remove_userdata, NULL);
        unregister_vm(m, vm);
}

/* The VM goes once its emulators have: done hears of it then (finish_remove()). */
static void begin_remove(Vm *vm, DoneFunc done, void *userdata)
{
        vm->remove_done = done;
        vm->remove_userdata = userdata;
        if (vm->wait_timer) {
                g_source_remove(vm->wait_timer);
                vm->wait_timer = 0;
        }
}

void manager_drop_vm(Manager *m, Vm *vm, DoneFunc done, void *userdata)
{
        if (vm->remove_done) {
                /* Already on its way out: this caller hears of it the same way. */
                return answer_error(m, done, userdata,
                                    g_error_new(EMU_ERROR, EMU_ERROR_BUSY,
                                                "VM %s is being removed", vm->name));
        }
        begin_remove(vm, done ? done : remove_done_kill, userdata);
        if (vm->state != VM_DEFINED) {
                vm->state = VM_LOST;
                dispatch_mark(m->dispatch, vm, VM_DIRTY_STATE);
        }
        g_autoptr(GPtrArray) users = manager_vm_emulators(m, vm);
        for (guint i = 0; i < users->len; i++) {
                Emulator *e = g_ptr_array_index(users, i);
                if (e->state != EMU_STATE_GONE)
                        emulator_vm_lost(e);
        }
        finish_remove(m, vm);
}

void manager_remove_vm(Manager *m, const char *name, DoneFunc done, void *userdata)
{
        GError *err = NULL;
        Vm *vm = manager_find_vm(m, name, &err);
        if (!vm)
                return answer_error(m, done, userdata, err);
        if (vm->state == VM_CONNECTING || vm->remove_done)
                return answer_error(m, done, userdata,
                                    g_error_new(EMU_ERROR, EMU_ERROR_BUSY,
                                                "VM %s is still being %s", name,
                                                vm->remove_done ? "removed" : "added"));
        g_autoptr(GPtrArray) users = manager_vm_emulators(m, vm);
        if (users->len && vm->state != VM_DEFINED) {
                g_autoptr(GString) ids = g_string_new(NULL);
                for (guint i = 0; i < users->len; i++)
                        g_string_append_printf(ids, "%s%s", i ? ", " : "",
                                               ((Emulator *)g_ptr_array_index(users, i))->id);
                return answer_error(m, done, userdata,
                                    g_error_new(EMU_ERROR, EMU_ERROR_BUSY,
                                                "VM %s still has emulators (%s); kill them "
                                                "first",
                                                name, ids->str));
        }
        /* A VM that never came: its prepared emulators are stopped with it. */
        begin_remove(vm, done, userdata);
        for (guint i = 0; i < users->len; i++) {
                Emulator *e = g_ptr_array_index(users, i);
                if (!e->kill_done && e->state != EMU_STATE_STOPPING &&
                    e->state != EMU_STATE_GONE)
                        emulator_kill(e, true, remove_done_kill, NULL);
        }
        finish_remove(m, vm);
}

/* Take emud's own option key out of the kind's options. */
static char *steal_option(GHashTable *options, const char *key)
{
        gpointer k = NULL;
        char *value = NULL;
        if (g_hash_table_steal_extended(options, key, &k, (gpointer *)&value))
                g_free(k);
        return value;
}

/* Every check of a Spawn or Prepare, then the emulator (registered); NULL with error set. */
static Emulator *new_emulator(Manager *m, Vm *vm, const char *kind_name, const char *id,
                              GHashTable *options, bool cold, GError **error)
{
        EmuKind *kind = g_hash_table_lookup(m->kinds, kind_name);
        if (!kind) {
                g_autofree char **names =
                        (char **)g_hash_table_get_keys_as_array(m->kinds, NULL);
                g_autofree char *list = g_strjoinv(", ", names);
                g_set_error(error, EMU_ERROR, EMU_ERROR_UNKNOWN_KIND,
                            "unknown emulator kind '%s' (known: %s)", kind_name, list);
                return NULL;
        }
        if (kind->unavailable) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_UNKNOWN_KIND,
                            "kind %s is not available here: %s", kind_name, kind->unavailable);
                return NULL;
        }
        if (vm->libvirt && !emulator_libvirt_supported(kind, vm->name, error))
                return NULL;
        if (cold && kind->fd_property) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                            "kind %s cannot be prepared: its device takes an fd that only "
                            "getfd on a running QEMU can pass; spawn it once QEMU runs",
                            kind_name);
                return NULL;
        }
        /* "restart" and "seccomp" are emud's, not the kind's: out before the kind checks. */
        EmuRestartPolicy restart;
        g_autofree char *restart_text = steal_option(options, "restart");
        if (!emu_restart_from_name(restart_text ? restart_text : kind->restart, &restart)) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                            "restart=%s is not valid: must be no, on-failure or always",
                            restart_text ? restart_text : kind->restart);
                return NULL;
        }
        if (vm->libvirt && !cold && restart_text && restart != EMU_RESTART_NO) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                            "restart=%s is not possible for a device hot-plugged into libvirt "
                            "domain %s: libvirt gives it no reconnect, so QEMU could not take "
                            "a new process; declare it in the domain's emud metadata to have "
                            "it restarted (emud-libvirt(7))",
                            restart_text, vm->name);
                return NULL;
        }
        if (vm->libvirt && !cold)
                restart = EMU_RESTART_NO; /* the default there, as emud-libvirt(7) says */
        if (!emu_kind_restartable(kind) && restart != EMU_RESTART_NO) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                            "restart=%s is not possible for kind %s: its device in QEMU cannot "
                            "take a new process (see emud-descriptor(5), reconnect); use "
                            "restart=no",
                            emu_restart_name(restart), kind_name);
                return NULL;
        }
        EmuSeccompMode seccomp = EMU_SECCOMP_ENFORCE;
        g_autofree char *mode = steal_option(options, "seccomp");
        if (mode && !emu_seccomp_mode_from_name(mode, &seccomp)) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                            "seccomp=%s is not valid: must be enforce, log or learn", mode);
                return NULL;
        }
        g_autofree char *socket = emulator_socket_path(vm, id, kind);
        EmuPlan *plan = emu_plan_new_at(kind, options, socket, true, error);
        if (!plan)
                return NULL;
        GError *err = NULL;
        EmuPolicy *policy = confine_load_policy(m->cfg, kind, &err);
        if (err) {
                emu_plan_free(plan);
                g_propagate_error(error, err);
                return NULL;
        }
        Emulator *e = emulator_new(m->cfg, m->dispatch, vm, kind, id, plan, restart, policy,
                                   seccomp);
        manager_register_emulator(m, e);
        return e;
}

static GError *check_new_id(Manager *m, const char *id)
{
        GError *err = refuse_when_shutting_down(m);
        if (err)
                return err;
        if (!emu_id_valid(id))
                return g_error_new(EMU_ERROR, EMU_ERROR_INVALID_ID,
                                   "invalid emulator id '%s': use %s", id, EMU_ID_RULE);
        if (g_hash_table_contains(m->emulators, id))
                return g_error_new(EMU_ERROR, EMU_ERROR_EXISTS,
                                   "an emulator with id '%s' already exists", id);
        return NULL;
}

void manager_spawn(Manager *m, const char *vm_name, const char *kind_name, const char *id,
                   GHashTable *options, DoneFunc done, void *userdata)
{
        GError *err = check_new_id(m, id);
        if (err)
                return answer_error(m, done, userdata, err);
        Vm *vm = manager_find_vm(m, vm_name, &err);
        if (!vm)
                return answer_error(m, done, userdata, err);
        if (vm->state != VM_CONNECTED)
                return answer_error(m, done, userdata,
                                    g_error_new(EMU_ERROR, EMU_ERROR_VM_LOST,
                                                "VM %s is %s, not connected%s", vm_name,
                                                vm_state_name(vm->state),
                                                vm->state == VM_DEFINED
                                                        ? " (emuctl prepare readies emulators "
                                                          "for a QEMU that is not running)"
                                                        : ""));
        Emulator *e = new_emulator(m, vm, kind_name, id, options, false, &err);
        if (!e)
                return answer_error(m, done, userdata, err);
        emulator_start(e, done, userdata);
}

/* The lowest chassis from 128 up that no prepared emulator of vm has. */
static bool pick_chassis(Manager *m, Vm *vm, unsigned *ret)
{
        g_autoptr(GPtrArray) list = manager_vm_emulators(m, vm);
        for (unsigned c = 128; c < 256; c++) {
                bool used = false;
                for (guint i = 0; i < list->len && !used; i++) {
                        Emulator *e = g_ptr_array_index(list, i);
                        used = e->cold && e->chassis == c;
                }
                if (!used) {
                        *ret = c;
                        return true;
                }
        }
        return false;
}

void manager_prepare(Manager *m, const char *vm_name, const char *const *qmp_paths,
                     const char *kind_name, const char *id, GHashTable *options, DoneFunc done,
                     void *userdata)
{
        GError *err = check_new_id(m, id);
        if (err)
                return answer_error(m, done, userdata, err);
        if (!emu_id_valid(vm_name))
                return answer_error(m, done, userdata,
                                    g_error_new(EMU_ERROR, EMU_ERROR_INVALID_ID,
                                                "invalid VM name '%s': use %s", vm_name,
                                                EMU_ID_RULE));
        bool have_paths = qmp_paths && qmp_paths[0];
        for (size_t i = 0; have_paths && qmp_paths[i]; i++)
                if (qmp_paths[i][0] != '/')
                        return answer_error(m, done, userdata,
                                            g_error_new(EMU_ERROR, EMU_ERROR_BAD_PATH,
                                                        "QMP socket path '%s' must be absolute",
                                                        qmp_paths[i]));
        Vm *vm = g_hash_table_lookup(m->vms, vm_name);
        if (vm && vm->remove_done)
                return answer_error(m, done, userdata,
                                    g_error_new(EMU_ERROR, EMU_ERROR_BUSY,
                                                "VM %s is being removed", vm_name));
        /* A running libvirt domain: its device is in QEMU already, or libvirt attaches it. */
        if (vm && vm->state != VM_DEFINED && !(vm->libvirt && vm->state == VM_CONNECTED))
                return answer_error(m, done, userdata,
                                    g_error_new(EMU_ERROR, EMU_ERROR_BUSY,
                                                "VM %s is %s: prepare is for a QEMU that has "
                                                "not started (use spawn to hot-plug)",
                                                vm_name, vm_state_name(vm->state)));
        if (vm && have_paths && vm->qmp_path && !g_str_equal(vm->qmp_path, qmp_paths[0]))
                return answer_error(m, done, userdata,
                                    g_error_new(EMU_ERROR, EMU_ERROR_EXISTS,
                                                "VM %s already waits for QEMU at %s",
                                                vm_name, vm->qmp_path));
        bool new_vm = !vm;
        if (new_vm) {
                vm = manager_new_vm(m, vm_name, have_paths ? qmp_paths[0] : NULL,
                                    have_paths ? qmp_paths + 1 : NULL);
                vm->state = VM_DEFINED;
                int r = vm_make_dir(vm, true);
                if (r < 0) {
                        err = g_error_new(EMU_ERROR, EMU_ERROR_FAILED, "cannot create %s: %s",
                                          vm->dir, g_strerror(-r));
                        vm_free(vm);
                        return answer_error(m, done, userdata, err);
                }
        }
        unsigned chassis = 0;
        if (!pick_chassis(m, vm, &chassis))
                err = g_error_new(EMU_ERROR, EMU_ERROR_NO_FREE_SLOT,
                                  "VM %s has 128 prepared emulators already", vm_name);
        Emulator *e = err ? NULL : new_emulator(m, vm, kind_name, id, options, true, &err);
        if (!e) {
                if (new_vm) {
                        vm_remove_dir(vm);
                        vm_free(vm);
                }
                return answer_error(m, done, userdata, err);
        }
        if (new_vm) {
                EmuLogCtx ctx = { .vm = vm_name };
                emu_info(&ctx, "defined for cold-plug; its QEMU is not running yet");
                manager_register_vm(m, vm);
        } else if (have_paths && !vm->qmp_path) {
                vm_set_paths(vm, qmp_paths);
        }
        emulator_prepare(e, chassis, done, userdata);
        vm_wait_for_qemu(vm);
}

void manager_kill(Manager *m, const char *vm, const char *id, DoneFunc done, void *userdata)
{
        GError *err = NULL;
        Emulator *e = manager_find_emulator(m, vm, id, &err);
        if (!e)
                return answer_error(m, done, userdata, err);
        emulator_kill(e, false, done, userdata);
}

bool manager_emulator_execute(Manager *m, const char *vm, const char *id, const char *command,
                              json_t *args, EmuExecFunc done, void *userdata, GError **error)
{
        Emulator *e = manager_find_emulator(m, vm, id, error);
        if (!e) {
                json_decref(args);
                return false;
        }
        return emulator_execute(e, command, args, done, userdata, error);
}

static gint by_id(gconstpointer a, gconstpointer b)
{
        return g_strcmp0((*(Emulator *const *)a)->id, (*(Emulator *const *)b)->id);
}

static gint by_name(gconstpointer a, gconstpointer b)
{
        return g_strcmp0((*(Vm *const *)a)->name, (*(Vm *const *)b)->name);
}

static GPtrArray *sorted_values(GHashTable *table, GCompareFunc cmp)
{
        GPtrArray *out = g_ptr_array_new();
        GHashTableIter it;
        gpointer value;
        g_hash_table_iter_init(&it, table);
        while (g_hash_table_iter_next(&it, NULL, &value))
                g_ptr_array_add(out, value);
        g_ptr_array_sort(out, cmp);
        return out;
}

GPtrArray *manager_sorted_emulators(Manager *m)
{
        return sorted_values(m->emulators, by_id);
}

GPtrArray *manager_sorted_vms(Manager *m)
{
        return sorted_values(m->vms, by_name);
}

static void shutdown_done(void *userdata, const GError *error)
{
        (void)userdata;
        (void)error; /* the emulator has logged it */
}

void manager_shutdown(Manager *m, bool stop_emulators)
{
        m->shutting_down = true;
        if (stop_emulators) {
                g_autoptr(GPtrArray) all = manager_sorted_emulators(m);
                for (guint i = 0; i < all->len; i++) {
                        Emulator *e = g_ptr_array_index(all, i);
                        if (e->kill_done || e->state == EMU_STATE_STOPPING ||
                            e->state == EMU_STATE_GONE)
                                e->kill_forced = true;
                        else
                                emulator_kill(e, true, shutdown_done, NULL);
                }
        }
        /* Emulators left running belong to their VMs; the next emud adopts them. */
        m->leave_emulators = !stop_emulators;
        dispatch_poke(m->dispatch);
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

bool manager_reload_kinds(Manager *m, GError **error)
{
        EmuCatalog *c = emu_catalog_load(m->cfg->kinds_dir, NULL, EMU_INTEROP_PROBE_TIMEOUT_MS,
                                         error);
        if (!c || !confine_check_kinds(m->cfg, c->kinds, error)) {
                emu_catalog_free(c);
                return false;
        }
        emu_catalog_free(m->catalog);
        m->catalog = c;
        m->kinds = c->kinds;
        emu_info(NULL, "kinds reloaded: %u kinds, %u interop backends not used",
                 g_hash_table_size(c->kinds), c->skipped->len);
        return true;
}

Manager *manager_new(EmudConfig *cfg, EmuCatalog *catalog)
{
        Manager *m = g_new0(Manager, 1);
        m->cfg = cfg;
        m->catalog = catalog;
        m->kinds = catalog->kinds;
        m->vms = g_hash_table_new(g_str_hash, g_str_equal);
        m->emulators = g_hash_table_new(g_str_hash, g_str_equal);
        m->observers = g_array_new(FALSE, FALSE, sizeof(Observer));
        m->dispatch = dispatch_new(&dispatch_ops, m);
        return m;
}

void manager_free(Manager *m)
{
        if (!m)
                return;
        dispatch_run(m->dispatch); /* what is finished is collected, what is due answered */
        /*
         * Emulators that still run belong to their VMs and stay, with their
         * sockets, for the next emud to adopt; the state file says so.
         */
        g_autoptr(GPtrArray) emulators = manager_sorted_emulators(m);
        for (guint i = 0; i < emulators->len; i++)
                emulator_free(g_ptr_array_index(emulators, i));
        g_hash_table_unref(m->emulators);
        g_autoptr(GPtrArray) vms = manager_sorted_vms(m);
        for (guint i = 0; i < vms->len; i++)
                vm_free(g_ptr_array_index(vms, i));
        g_hash_table_unref(m->vms);
        emu_catalog_free(m->catalog);
        dispatch_free(m->dispatch);
        g_array_unref(m->observers);
        g_free(m);
}
