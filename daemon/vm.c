/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vm: the QMP connection to one VM's QEMU. It connects (or, after an emud
 * restart, reconnects), learns which chardev options this QEMU takes, and
 * turns what QEMU says into the three facts the rest of emud needs: QEMU is
 * there, QEMU is gone, QEMU deleted a device. Nothing here touches an
 * emulator; the owner routes those facts (VmOps).
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "emu-error.h"
#include "emu-log.h"
#include "emu-socket.h"
#include "emu-util.h"
#include "vm.h"

const char *vm_state_name(VmState s)
{
        static const char *const names[] = { "defined", "connecting", "connected", "lost" };
        return s < G_N_ELEMENTS(names) ? names[s] : "?";
}

static void set_state(Vm *vm, VmState state)
{
        vm->state = state;
        dispatch_mark(vm->dispatch, vm, VM_DIRTY_STATE);
}

/* Does any object type of the schema have a member named name? */
static bool schema_has_member(json_t *schema, const char *name)
{
        size_t i, j;
        json_t *type, *member;
        json_array_foreach (schema, i, type) {
                json_array_foreach (json_object_get(type, "members"), j, member) {
                        const char *n = json_string_value(json_object_get(member, "name"));
                        if (n && g_str_equal(n, name))
                                return true;
                }
        }
        return false;
}

static void on_schema(EmuQmpClient *c, json_t *ret, const GError *error, void *userdata)
{
        Vm *vm = userdata;
        EmuLogCtx ctx = { .vm = vm->name };
        if (error)
                emu_warn(&ctx, "query-qmp-schema failed (%s); using chardev reconnect",
                         error->message);
        /* QEMU 9.2 deprecates the socket chardev's reconnect (seconds) for reconnect-ms. */
        vm->reconnect_ms = !error && schema_has_member(ret, "reconnect-ms");
        emu_info(&ctx, "connected to QEMU's QMP at %s", vm->qmp_path);
        vm->adopting = false;
        set_state(vm, VM_CONNECTED);
        DoneFunc done = g_steal_pointer(&vm->add_done);
        dispatch_done(vm->dispatch, done, vm->add_userdata, NULL);
        vm->ops->ready(vm, vm->ops_userdata);
}

static void on_ready(EmuQmpClient *c, json_t *greeting, void *userdata)
{
        Vm *vm = userdata;
        emu_qmp_client_execute(c, "query-qmp-schema", NULL, vm->cfg->qmp_timeout_ms, on_schema,
                               vm);
}

static void on_event(EmuQmpClient *c, const char *name, json_t *data, void *userdata)
{
        Vm *vm = userdata;
        const char *dev = json_string_value(json_object_get(data, "device"));
        if (g_str_equal(name, "DEVICE_DELETED") && dev)
                vm->ops->device_deleted(vm, dev, vm->ops_userdata);
}

static void on_closed(EmuQmpClient *c, const GError *reason, void *userdata)
{
        Vm *vm = userdata;
        EmuLogCtx ctx = { .vm = vm->name };
        const char *why = reason ? reason->message : "closed";
        g_clear_pointer(&vm->qmp, emu_qmp_client_free); /* deferred by the client itself */
        if (vm->add_done)
                emu_warn(&ctx, "QEMU's QMP went away before it answered: %s", why);
        else if (vm->adopting)
                emu_warn(&ctx, "cannot reconnect to QEMU (%s); marking the VM lost", why);
        else
                emu_warn(&ctx, "lost QEMU's QMP connection (%s); stopping its emulators", why);
        vm->adopting = false;
        set_state(vm, VM_LOST);
        vm->ops->closed(vm, reason, vm->ops_userdata);
}

static const EmuQmpClientOps qmp_ops = {
        .ready = on_ready,
        .event = on_event,
        .closed = on_closed,
};

Vm *vm_new(const EmudConfig *cfg, Dispatch *dispatch, const VmOps *ops, void *userdata,
           const char *name, const char *qmp_path, const char *const *extra_paths)
{
        Vm *vm = g_new0(Vm, 1);
        vm->type = DISPATCH_VM;
        vm->cfg = cfg;
        vm->dispatch = dispatch;
        vm->ops = ops;
        vm->ops_userdata = userdata;
        vm->name = g_strdup(name);
        vm->qmp_path = g_strdup(qmp_path);
        vm->extra_qmp_paths = g_strdupv((char **)extra_paths);
        vm->extra_qmp = g_ptr_array_new_with_free_func((GDestroyNotify)emu_qmp_client_free);
        vm->dir = g_build_filename(cfg->runtime_dir, "vm", name, NULL);
        vm->state = VM_CONNECTING;
        vm->reserved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        return vm;
}

void vm_free(Vm *vm)
{
        if (!vm)
                return;
        dispatch_forget(vm->dispatch, vm);
        if (vm->wait_timer)
                g_source_remove(vm->wait_timer);
        emu_qmp_client_free(vm->qmp);
        g_ptr_array_unref(vm->extra_qmp);
        g_strfreev(vm->extra_qmp_paths);
        g_hash_table_unref(vm->reserved);
        domain_xml_free(vm->domain);
        g_free(vm->name);
        g_free(vm->qmp_path);
        g_free(vm->dir);
        g_free(vm);
}

GArray *vm_connect_monitors(const char *const *paths, GError **error)
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

static void extra_on_closed(EmuQmpClient *c, const GError *reason, void *userdata)
{
        Vm *vm = userdata;
        EmuLogCtx ctx = { .vm = vm->name };
        emu_warn(&ctx, "lost a QMP monitor of the proxy: %s; its clients move to another",
                 reason ? reason->message : "closed");
}

void vm_set_paths(Vm *vm, const char *const *paths)
{
        g_free(vm->qmp_path);
        g_strfreev(vm->extra_qmp_paths);
        vm->qmp_path = g_strdup(paths[0]);
        vm->extra_qmp_paths = g_strdupv((char **)paths + 1);
}

static gboolean on_wait_timer(gpointer userdata)
{
        Vm *vm = userdata;
        int fd = emu_unix_connect(vm->qmp_path);
        if (fd < 0)
                return G_SOURCE_CONTINUE; /* not there yet, or not listening yet */
        vm->wait_timer = 0;
        EmuLogCtx ctx = { .vm = vm->name };
        emu_info(&ctx, "QEMU's QMP socket %s accepts; connecting", vm->qmp_path);
        set_state(vm, VM_CONNECTING);
        vm_connect(vm, fd, NULL);
        return G_SOURCE_REMOVE;
}

void vm_wait_for_qemu(Vm *vm)
{
        if (vm->wait_timer || !vm->qmp_path || vm->state != VM_DEFINED)
                return;
        EmuLogCtx ctx = { .vm = vm->name };
        emu_info(&ctx, "waiting for QEMU's QMP socket %s", vm->qmp_path);
        /* A socket that appears is only usable once QEMU listens: try to connect. */
        vm->wait_timer = g_timeout_add(100, on_wait_timer, vm);
}

void vm_connect(Vm *vm, int fd, GArray *extra_fds)
{
        static const EmuQmpClientOps extra_ops = { .closed = extra_on_closed };
        g_autofree char *label = g_strdup_printf("QEMU QMP %s", vm->qmp_path);
        vm->qmp = emu_qmp_client_new(fd, label, vm->cfg->qmp_timeout_ms, &qmp_ops, vm);
        for (guint i = 0; extra_fds && i < extra_fds->len; i++) {
                int *xfd = &g_array_index(extra_fds, int, i);
                if (*xfd < 0)
                        continue;
                g_autofree char *xlabel = g_strdup_printf("QEMU QMP %s", vm->extra_qmp_paths[i]);
                g_ptr_array_add(vm->extra_qmp,
                                emu_qmp_client_new(emu_steal_fd(xfd), xlabel,
                                                   vm->cfg->qmp_timeout_ms, &extra_ops, vm));
        }
}

void vm_reconnect(Vm *vm)
{
        EmuLogCtx ctx = { .vm = vm->name };
        g_autoptr(GError) err = NULL;
        int fd = emu_qmp_connect_unix(vm->qmp_path, &err);
        if (fd < 0) {
                emu_warn(&ctx, "QEMU is gone (%s); marking the VM lost", err->message);
                set_state(vm, VM_LOST);
                return;
        }
        emu_info(&ctx, "reconnecting to QEMU's QMP at %s", vm->qmp_path);
        vm->adopting = true;
        g_autoptr(GArray) extra_fds = g_array_new(FALSE, FALSE, sizeof(int));
        g_array_set_clear_func(extra_fds, (GDestroyNotify)emu_closep);
        for (size_t i = 0; vm->extra_qmp_paths[i]; i++) {
                g_autoptr(GError) xerr = NULL;
                int xfd = emu_qmp_connect_unix(vm->extra_qmp_paths[i], &xerr);
                if (xfd < 0)
                        emu_warn(&ctx, "QMP monitor for the proxy: %s", xerr->message);
                g_array_append_val(extra_fds, xfd);
        }
        vm_connect(vm, fd, extra_fds);
}

static void remove_tree(const char *dir)
{
        int r = emu_remove_tree(dir);
        if (r < 0)
                emu_warn(NULL, "cannot remove %s: %s", dir, g_strerror(-r));
}

int vm_make_dir(Vm *vm, bool clean)
{
        if (clean)
                remove_tree(vm->dir); /* leftovers of an emud that died */
        if (g_mkdir_with_parents(vm->dir, 0711) < 0)
                return -errno;
        return 0;
}

void vm_remove_dir(Vm *vm)
{
        remove_tree(vm->dir);
}

void vm_set_reconnect(const Vm *vm, json_t *socket_data)
{
        /* QEMU reattaches by itself when a restarted emulator serves again. */
        if (vm->reconnect_ms)
                json_object_set_new(socket_data, "reconnect-ms", json_integer(100));
        else
                json_object_set_new(socket_data, "reconnect", json_integer(1));
}
