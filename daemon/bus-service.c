/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bus-service: the D-Bus API, org.emud.Manager1 and one org.emud.Emulator1
 * object per emulator.
 *
 * Methods that take time (AddVM, Spawn, Kill) keep a reference to the call
 * and reply when the manager reports back, so the bus is never blocked and
 * a client's reply says what really happened.
 */
#include <errno.h>
#include <systemd/sd-daemon.h>

#include "bus-service.h"
#include "emu-cleanup.h"
#include "emu-error.h"
#include "emud-build.h"
#include "confine.h"
#include "qmp-service.h"

typedef struct {
        sd_bus_message *call;
        char *path; /* object path to return, for Spawn */
} Reply;

static Reply *reply_new(sd_bus_message *call, const char *path)
{
        Reply *r = g_new0(Reply, 1);
        r->call = sd_bus_message_ref(call);
        r->path = g_strdup(path);
        return r;
}

static void reply_done(void *userdata, const GError *error)
{
        Reply *r = userdata;
        int rc;
        if (error) {
                int code = error->domain == EMU_ERROR ? error->code : EMU_ERROR_FAILED;
                rc = sd_bus_reply_method_errorf(r->call, emu_error_dbus_name(code), "%s",
                                                error->message);
        } else if (r->path) {
                rc = sd_bus_reply_method_return(r->call, "o", r->path);
        } else {
                rc = sd_bus_reply_method_return(r->call, NULL);
        }
        if (rc < 0)
                g_warning("cannot send D-Bus reply: %s", g_strerror(-rc));
        sd_bus_message_unref(r->call);
        g_free(r->path);
        g_free(r);
}

static int reply_gerror(sd_bus_error *ret_error, const GError *error)
{
        int code = error->domain == EMU_ERROR ? error->code : EMU_ERROR_FAILED;
        return sd_bus_error_setf(ret_error, emu_error_dbus_name(code), "%s", error->message);
}

static int method_add_vm(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *name, *qmp;
        int r = sd_bus_message_read(msg, "ss", &name, &qmp);
        if (r < 0)
                return r;
        const char *paths[] = { qmp, NULL };
        manager_add_vm(m, name, paths, reply_done, reply_new(msg, NULL));
        return 1;
}

static int method_add_vm_with_monitors(sd_bus_message *msg, void *userdata,
                                       sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *name;
        g_auto(GStrv) paths = NULL;
        int r = sd_bus_message_read(msg, "s", &name);
        if (r >= 0)
                r = sd_bus_message_read_strv(msg, &paths);
        if (r < 0)
                return r;
        manager_add_vm(m, name, (const char *const *)paths, reply_done, reply_new(msg, NULL));
        return 1;
}

static int method_remove_vm(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *name;
        int r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        g_autoptr(GError) err = NULL;
        if (!manager_remove_vm(m, name, &err))
                return reply_gerror(ret_error, err);
        return sd_bus_reply_method_return(msg, NULL);
}

static int read_options(sd_bus_message *msg, GHashTable *options)
{
        int r = sd_bus_message_enter_container(msg, 'a', "{ss}");
        if (r < 0)
                return r;
        const char *key, *value;
        while ((r = sd_bus_message_read(msg, "{ss}", &key, &value)) > 0)
                g_hash_table_insert(options, g_strdup(key), g_strdup(value));
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

static int method_spawn(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *vm, *kind, *id;
        int r = sd_bus_message_read(msg, "sss", &vm, &kind, &id);
        if (r < 0)
                return r;
        g_autoptr(GHashTable) options = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                              g_free);
        r = read_options(msg, options);
        if (r < 0)
                return r;
        g_autofree char *path = g_strdup_printf("%s/%s", EMUD_EMULATOR_PREFIX, id);
        manager_spawn(m, vm, kind, id, options, reply_done, reply_new(msg, path));
        return 1;
}

static int method_kill(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *id;
        int r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        manager_kill(m, id, reply_done, reply_new(msg, NULL));
        return 1;
}

static int method_shutdown(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        int stop = 0;
        int r = sd_bus_message_read(msg, "b", &stop);
        if (r < 0)
                return r;
        if (m->shutting_down)
                return sd_bus_error_setf(ret_error, emu_error_dbus_name(EMU_ERROR_SHUTTING_DOWN),
                                         "emud is already shutting down");
        g_message("shutdown requested over D-Bus%s", stop ? ", stopping every emulator" : "");
        sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
        /* Replied to when emud is done; main() flushes the bus before it exits. */
        m->shutdown_reply = sd_bus_message_ref(msg);
        manager_shutdown(m, stop);
        return 1;
}

static int method_qmp_socket(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *name;
        int r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        Vm *vm = g_hash_table_lookup(m->vms, name);
        if (!vm)
                return sd_bus_error_setf(ret_error, emu_error_dbus_name(EMU_ERROR_UNKNOWN_VM),
                                         "no VM named '%s'", name);
        if (!vm->proxy)
                return sd_bus_error_setf(ret_error,
                                         emu_error_dbus_name(EMU_ERROR_QMP_UNAVAILABLE),
                                         "VM %s has no QMP proxy socket (it is %s)", name,
                                         vm_state_name(vm->state));
        g_autofree char *path = qmp_service_socket_path(vm);
        return sd_bus_reply_method_return(msg, "s", path);
}

static int method_policy_dump(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        const char *id;
        int r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        Emulator *e = g_hash_table_lookup(m->emulators, id);
        if (!e)
                return sd_bus_error_setf(ret_error,
                                         emu_error_dbus_name(EMU_ERROR_UNKNOWN_EMULATOR),
                                         "no emulator with id '%s'", id);
        g_autoptr(GError) err = NULL;
        g_autofree char *text = confine_dump_policy(e, &err);
        if (!text)
                return reply_gerror(ret_error, err);
        return sd_bus_reply_method_return(msg, "s", text);
}

static gint compare_emulators(gconstpointer a, gconstpointer b)
{
        const Emulator *x = *(Emulator *const *)a, *y = *(Emulator *const *)b;
        return g_strcmp0(x->id, y->id);
}

static int method_list(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        g_autoptr(sd_bus_message) reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssssuu)");
        if (r < 0)
                return r;
        g_autoptr(GPtrArray) all = g_ptr_array_new();
        GHashTableIter it;
        Emulator *e;
        g_hash_table_iter_init(&it, m->emulators);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&e))
                g_ptr_array_add(all, e);
        g_ptr_array_sort(all, compare_emulators);
        for (guint i = 0; i < all->len; i++) {
                e = g_ptr_array_index(all, i);
                r = sd_bus_message_append(reply, "(ssssuu)", e->id, e->vm->name, e->kind->name,
                                          emu_state_name(e->state), (uint32_t)e->proc.pid,
                                          (uint32_t)e->restarts);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_vms(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        g_autoptr(sd_bus_message) reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sss)");
        if (r < 0)
                return r;
        g_autoptr(GList) names = g_hash_table_get_keys(m->vms);
        names = g_list_sort(names, (GCompareFunc)g_strcmp0);
        for (GList *l = names; l; l = l->next) {
                Vm *vm = g_hash_table_lookup(m->vms, l->data);
                r = sd_bus_message_append(reply, "(sss)", vm->name, vm->qmp_path,
                                          vm_state_name(vm->state));
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_kinds(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Manager *m = userdata;
        g_autoptr(sd_bus_message) reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ss)");
        if (r < 0)
                return r;
        g_autoptr(GList) names = g_hash_table_get_keys(m->kinds);
        names = g_list_sort(names, (GCompareFunc)g_strcmp0);
        for (GList *l = names; l; l = l->next) {
                const EmuKind *k = g_hash_table_lookup(m->kinds, l->data);
                r = sd_bus_message_append(reply, "(ss)", k->name,
                                          k->description ? k->description : "");
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_version(sd_bus *bus, const char *path, const char *interface,
                            const char *property, sd_bus_message *reply, void *userdata,
                            sd_bus_error *ret_error)
{
        return sd_bus_message_append(reply, "s", EMUD_VERSION);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_NAMES("AddVM", "ss", SD_BUS_PARAM(name) SD_BUS_PARAM(qmp_socket),
                                 "", , method_add_vm, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AddVMWithMonitors", "sas",
                                 SD_BUS_PARAM(name) SD_BUS_PARAM(qmp_sockets), "", ,
                                 method_add_vm_with_monitors, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveVM", "s", SD_BUS_PARAM(name), "", , method_remove_vm,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Spawn", "sssa{ss}",
                                 SD_BUS_PARAM(vm) SD_BUS_PARAM(kind) SD_BUS_PARAM(id)
                                         SD_BUS_PARAM(options),
                                 "o", SD_BUS_PARAM(emulator), method_spawn,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Kill", "s", SD_BUS_PARAM(id), "", , method_kill,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("QmpSocket", "s", SD_BUS_PARAM(vm), "s", SD_BUS_PARAM(path),
                                 method_qmp_socket, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("PolicyDump", "s", SD_BUS_PARAM(id), "s", SD_BUS_PARAM(policy),
                                 method_policy_dump, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Shutdown", "b", SD_BUS_PARAM(stop_emulators), "", ,
                                 method_shutdown, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("List", "", , "a(ssssuu)", SD_BUS_PARAM(emulators),
                                 method_list, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListVMs", "", , "a(sss)", SD_BUS_PARAM(vms),
                                 method_list_vms, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListKinds", "", , "a(ss)", SD_BUS_PARAM(kinds),
                                 method_list_kinds, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* Emulator objects: every property reads the Emulator the slot points at. */
static int property_emulator(sd_bus *bus, const char *path, const char *interface,
                             const char *property, sd_bus_message *reply, void *userdata,
                             sd_bus_error *ret_error)
{
        const Emulator *e = userdata;
        if (g_str_equal(property, "Id"))
                return sd_bus_message_append(reply, "s", e->id);
        if (g_str_equal(property, "VM"))
                return sd_bus_message_append(reply, "s", e->vm->name);
        if (g_str_equal(property, "Kind"))
                return sd_bus_message_append(reply, "s", e->kind->name);
        if (g_str_equal(property, "State"))
                return sd_bus_message_append(reply, "s", emu_state_name(e->state));
        if (g_str_equal(property, "Pid"))
                return sd_bus_message_append(reply, "u", (uint32_t)e->proc.pid);
        if (g_str_equal(property, "Restarts"))
                return sd_bus_message_append(reply, "u", (uint32_t)e->restarts);
        if (g_str_equal(property, "Reason"))
                return sd_bus_message_append(reply, "s", e->reason ? e->reason : "");
        if (g_str_equal(property, "Device"))
                return sd_bus_message_append(reply, "s", e->qdev_id);
        if (g_str_equal(property, "Slot"))
                return sd_bus_message_append(reply, "s", e->slot ? e->slot : "");
        if (g_str_equal(property, "Socket"))
                return sd_bus_message_append(reply, "s", e->socket_path);
        if (g_str_equal(property, "RestartPolicy")) {
                static const char *const names[] = { "no", "on-failure", "always" };
                return sd_bus_message_append(reply, "s", names[e->restart]);
        }
        if (g_str_equal(property, "LastExit"))
                return sd_bus_message_append(reply, "s",
                                             e->last_exit.text ? e->last_exit.text : "");
        if (g_str_equal(property, "ExitStatus"))
                return sd_bus_message_append(reply, "i",
                                             e->last_exit.known && !e->last_exit.signal
                                                     ? e->last_exit.code
                                                     : -1);
        if (g_str_equal(property, "ExitSignal"))
                return sd_bus_message_append(reply, "i", e->last_exit.signal);
        if (g_str_equal(property, "SeccompMode"))
                return sd_bus_message_append(reply, "s",
                                             e->policy ? emu_seccomp_mode_name(e->seccomp_mode)
                                                       : "off");
        if (g_str_equal(property, "SeccompReport"))
                return sd_bus_message_append(reply, "s",
                                             e->seccomp_report ? e->seccomp_report : "");
        if (g_str_equal(property, "CoreDumped"))
                return sd_bus_message_append(reply, "b", (int)e->last_exit.core);
        return -ENOENT;
}

#define EMU_PROP(name, sig, flags) SD_BUS_PROPERTY(name, sig, property_emulator, 0, flags)
static const sd_bus_vtable emulator_vtable[] = {
        SD_BUS_VTABLE_START(0),
        EMU_PROP("Id", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        EMU_PROP("VM", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        EMU_PROP("Kind", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        EMU_PROP("Device", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        EMU_PROP("Socket", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        EMU_PROP("State", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("Pid", "u", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("Restarts", "u", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("Reason", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("Slot", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("RestartPolicy", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        EMU_PROP("LastExit", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("ExitStatus", "i", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("ExitSignal", "i", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("CoreDumped", "b", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("SeccompMode", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        EMU_PROP("SeccompReport", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};

int bus_service_attach(Manager *m, sd_bus *bus)
{
        m->bus = sd_bus_ref(bus);
        int r = sd_bus_add_object_vtable(bus, NULL, EMUD_MANAGER_PATH, EMUD_MANAGER_IFACE,
                                         manager_vtable, m);
        if (r < 0)
                return r;
        return sd_bus_add_object_manager(bus, NULL, "/org/emud");
}

int bus_emulator_add(Manager *m, Emulator *e)
{
        if (!m->bus)
                return 0;
        int r = sd_bus_add_object_vtable(m->bus, &e->bus_slot, e->object_path,
                                         EMUD_EMULATOR_IFACE, emulator_vtable, e);
        if (r < 0)
                return r;
        (void)sd_bus_emit_object_added(m->bus, e->object_path);
        return 0;
}

void bus_emulator_changed(Manager *m, Emulator *e)
{
        if (!m->bus || !e->bus_slot)
                return;
        (void)sd_bus_emit_properties_changed(m->bus, e->object_path, EMUD_EMULATOR_IFACE,
                                             "State", "Pid", "Restarts", "Reason", "Slot",
                                             "LastExit", "ExitStatus", "ExitSignal",
                                             "CoreDumped", "SeccompReport", NULL);
}

void bus_emulator_remove(Manager *m, Emulator *e)
{
        if (!m->bus || !e->bus_slot)
                return;
        (void)sd_bus_emit_object_removed(m->bus, e->object_path);
        e->bus_slot = sd_bus_slot_unref(e->bus_slot);
}
