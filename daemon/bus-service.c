/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bus-service: the D-Bus API, org.emud.Manager1 and one org.emud.Emulator1
 * object per emulator. It is a front end (its methods call the manager)
 * and an observer (the manager tells it what changed, once per pass).
 *
 * Emulator objects are not registered one by one: a fallback vtable finds
 * the emulator for a path when a call arrives, and a node enumerator lists
 * them, so an object exists exactly as long as its emulator does. Paths are
 * built by emu_bus_emulator_path(), which escapes any valid id.
 *
 * Methods that take time (AddVM, Spawn, Kill) keep a reference to the call
 * and reply when the manager reports back, so the bus is never blocked and
 * a client's reply says what really happened.
 */
#include <errno.h>
#include <systemd/sd-daemon.h>

#include "bus-service.h"
#include "libvirt-domains.h"
#include "emu-bus.h"
#include "emu-cleanup.h"
#include "emu-error.h"
#include "emu-util.h"
#include "emud-build.h"
#include "qmp-service.h"

struct BusService {
        Manager *m;
        QmpService *qmp;
        sd_bus *bus;
        sd_bus_message *shutdown_reply; /* a Shutdown call, answered when done */
};

typedef struct {
        sd_bus_message *call;
        char *path;      /* object path to return, for Spawn and Prepare */
        Manager *m;      /* Prepare: where to find the emulator for its QEMU arguments */
        char *prepared;  /* Prepare: the emulator's id */
} Reply;

static Reply *reply_new(sd_bus_message *call, const char *path)
{
        Reply *r = g_new0(Reply, 1);
        r->call = sd_bus_message_ref(call);
        r->path = g_strdup(path);
        return r;
}

/* Prepare's answer: the object, and what QEMU's command line needs. */
static int reply_prepared(Reply *r)
{
        Emulator *e = manager_find_emulator(r->m, NULL, r->prepared, NULL);
        if (!e)
                return sd_bus_reply_method_errorf(r->call, emu_error_dbus_name(EMU_ERROR_FAILED),
                                                  "emulator %s went away", r->prepared);
        g_auto(GStrv) args = emulator_qemu_args(e);
        g_autoptr(sd_bus_message) reply = NULL;
        int rc = sd_bus_message_new_method_return(r->call, &reply);
        if (rc >= 0)
                rc = sd_bus_message_append(reply, "o", r->path);
        if (rc >= 0)
                rc = sd_bus_message_append_strv(reply, args);
        if (rc >= 0)
                rc = sd_bus_send(NULL, reply, NULL);
        return rc;
}

static void reply_done(void *userdata, const GError *error)
{
        Reply *r = userdata;
        int rc;
        if (error) {
                int code = error->domain == EMU_ERROR ? error->code : EMU_ERROR_FAILED;
                rc = sd_bus_reply_method_errorf(r->call, emu_error_dbus_name(code), "%s",
                                                error->message);
        } else if (r->prepared) {
                rc = reply_prepared(r);
        } else if (r->path) {
                rc = sd_bus_reply_method_return(r->call, "o", r->path);
        } else {
                rc = sd_bus_reply_method_return(r->call, NULL);
        }
        if (rc < 0)
                g_warning("cannot send D-Bus reply: %s", g_strerror(-rc));
        sd_bus_message_unref(r->call);
        g_free(r->path);
        g_free(r->prepared);
        g_free(r);
}

static int reply_gerror(sd_bus_error *ret_error, const GError *error)
{
        int code = error->domain == EMU_ERROR ? error->code : EMU_ERROR_FAILED;
        return sd_bus_error_setf(ret_error, emu_error_dbus_name(code), "%s", error->message);
}

static int method_add_vm(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        const char *name, *qmp;
        int r = sd_bus_message_read(msg, "ss", &name, &qmp);
        if (r < 0)
                return r;
        const char *paths[] = { qmp, NULL };
        manager_add_vm(b->m, name, paths, reply_done, reply_new(msg, NULL));
        return 1;
}

static int method_add_vm_with_monitors(sd_bus_message *msg, void *userdata,
                                       sd_bus_error *ret_error)
{
        BusService *b = userdata;
        const char *name;
        g_auto(GStrv) paths = NULL;
        int r = sd_bus_message_read(msg, "s", &name);
        if (r >= 0)
                r = sd_bus_message_read_strv(msg, &paths);
        if (r < 0)
                return r;
        manager_add_vm(b->m, name, (const char *const *)paths, reply_done, reply_new(msg, NULL));
        return 1;
}

static int method_remove_vm(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        const char *name;
        int r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        manager_remove_vm(b->m, name, reply_done, reply_new(msg, NULL));
        return 1;
}

static int method_libvirt_hook(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        const char *op, *subop, *xml;
        int r = sd_bus_message_read(msg, "sss", &op, &subop, &xml);
        if (r < 0)
                return r;
        if (!b->m->libvirt)
                return sd_bus_error_setf(ret_error, emu_error_dbus_name(EMU_ERROR_FAILED),
                                         "emud does not follow libvirt (libvirt-uri is empty "
                                         "in emud.conf)");
        lv_domains_hook(b->m->libvirt, op, subop, xml, reply_done, reply_new(msg, NULL));
        return 1;
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

/* The options that end Spawn and Prepare, and the reply that will carry id's object path. */
static int read_tail(sd_bus_message *msg, const char *id, GHashTable **ret_options,
                     Reply **ret_reply)
{
        g_autoptr(GHashTable) options = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                              g_free);
        int r = read_options(msg, options);
        if (r < 0)
                return r;
        g_autofree char *path = emu_bus_emulator_path(id);
        if (!path)
                return -ENOMEM;
        *ret_options = g_steal_pointer(&options);
        *ret_reply = reply_new(msg, path);
        return 0;
}

static int method_spawn(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        const char *vm, *kind, *id;
        g_autoptr(GHashTable) options = NULL;
        Reply *reply = NULL;
        int r = sd_bus_message_read(msg, "sss", &vm, &kind, &id);
        if (r >= 0)
                r = read_tail(msg, id, &options, &reply);
        if (r < 0)
                return r;
        manager_spawn(b->m, vm, kind, id, options, reply_done, reply);
        return 1;
}

static int method_prepare(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        const char *vm, *kind, *id;
        g_auto(GStrv) qmp = NULL;
        g_autoptr(GHashTable) options = NULL;
        Reply *reply = NULL;
        int r = sd_bus_message_read(msg, "s", &vm);
        if (r >= 0)
                r = sd_bus_message_read_strv(msg, &qmp);
        if (r >= 0)
                r = sd_bus_message_read(msg, "ss", &kind, &id);
        if (r >= 0)
                r = read_tail(msg, id, &options, &reply);
        if (r < 0)
                return r;
        reply->m = b->m;
        reply->prepared = g_strdup(id);
        manager_prepare(b->m, vm, (const char *const *)qmp, kind, id, options, reply_done,
                        reply);
        return 1;
}

static int method_kill(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        const char *id;
        int r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        manager_kill(b->m, NULL, id, reply_done, reply_new(msg, NULL));
        return 1;
}

static int method_shutdown(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        int stop = 0;
        int r = sd_bus_message_read(msg, "b", &stop);
        if (r < 0)
                return r;
        if (b->m->shutting_down)
                return sd_bus_error_setf(ret_error, emu_error_dbus_name(EMU_ERROR_SHUTTING_DOWN),
                                         "emud is already shutting down");
        g_message("shutdown requested over D-Bus%s", stop ? ", stopping every emulator" : "");
        sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
        /* Replied to when emud is done; main() flushes the bus before it exits. */
        b->shutdown_reply = sd_bus_message_ref(msg);
        manager_shutdown(b->m, stop);
        return 1;
}

static int method_qmp_socket(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        const char *name;
        int r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        g_autoptr(GError) err = NULL;
        g_autofree char *path = qmp_service_socket(b->qmp, name, &err);
        if (!path)
                return reply_gerror(ret_error, err);
        return sd_bus_reply_method_return(msg, "s", path);
}

static int method_policy_dump(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        const char *id;
        int r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        g_autoptr(GError) err = NULL;
        Emulator *e = manager_find_emulator(b->m, NULL, id, &err);
        g_autofree char *text = e ? emulator_dump_policy(e, &err) : NULL;
        if (!text)
                return reply_gerror(ret_error, err);
        return sd_bus_reply_method_return(msg, "s", text);
}

/* The three listings: rows as JSON objects, written by the table they share with emuctl. */
static int reply_list(sd_bus_message *msg, const EmuBusList *l, json_t *rows)
{
        g_autoptr(json_t) owned = rows;
        g_autoptr(sd_bus_message) reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = emu_bus_append_list(reply, l, owned);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        json_t *rows = json_array();
        g_autoptr(GPtrArray) all = manager_sorted_emulators(b->m);
        for (guint i = 0; i < all->len; i++) {
                const Emulator *e = g_ptr_array_index(all, i);
                json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "id",
                                                      e->id, "vm", e->vm->name, "kind",
                                                      e->kind->name, "state",
                                                      emu_state_name(e->state), "pid",
                                                      (json_int_t)e->proc.pid, "restarts",
                                                      (json_int_t)e->restarts));
        }
        return reply_list(msg, &emu_bus_list_emulators, rows);
}

static int method_list_vms(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        json_t *rows = json_array();
        g_autoptr(GPtrArray) all = manager_sorted_vms(b->m);
        for (guint i = 0; i < all->len; i++) {
                const Vm *vm = g_ptr_array_index(all, i);
                const char *qmp = vm->libvirt ? "(libvirt)" : vm->qmp_path ? vm->qmp_path : "";
                json_array_append_new(rows, json_pack("{s:s, s:s, s:s}", "name", vm->name, "qmp",
                                                      qmp, "state",
                                                      vm_state_name(vm->state)));
        }
        return reply_list(msg, &emu_bus_list_vms, rows);
}

static int method_list_kinds(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        json_t *rows = json_array();
        g_autoptr(GList) names = g_hash_table_get_keys(b->m->kinds);
        names = g_list_sort(names, (GCompareFunc)g_strcmp0);
        for (GList *l = names; l; l = l->next) {
                const EmuKind *k = g_hash_table_lookup(b->m->kinds, l->data);
                const char *note = k->unavailable  ? k->unavailable
                                   : k->description ? k->description
                                                    : "";
                json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s}", "kind", k->name,
                                                      "status",
                                                      k->unavailable ? "unavailable"
                                                                     : "available",
                                                      "source", k->origin, "note", note));
        }
        /* Interop backends that are not kinds, and why. */
        const GPtrArray *skipped = b->m->catalog->skipped;
        for (guint i = 0; i < skipped->len; i++) {
                const EmuCatalogSkip *s = g_ptr_array_index(skipped, i);
                json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s}", "kind",
                                                      s->kind ? s->kind : "-", "status",
                                                      "unused", "source", s->origin, "note",
                                                      s->reason));
        }
        return reply_list(msg, &emu_bus_list_kinds, rows);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        g_autoptr(GError) err = NULL;
        if (!manager_reload_kinds(b->m, &err))
                return reply_gerror(ret_error, err);
        return sd_bus_reply_method_return(msg, NULL);
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
        SD_BUS_METHOD_WITH_NAMES("LibvirtHook", "sss",
                                 SD_BUS_PARAM(operation) SD_BUS_PARAM(sub_operation)
                                 SD_BUS_PARAM(domain_xml), "", , method_libvirt_hook,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Spawn", "sssa{ss}",
                                 SD_BUS_PARAM(vm) SD_BUS_PARAM(kind) SD_BUS_PARAM(id)
                                         SD_BUS_PARAM(options),
                                 "o", SD_BUS_PARAM(emulator), method_spawn,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Prepare", "sasssa{ss}",
                                 SD_BUS_PARAM(vm) SD_BUS_PARAM(qmp_sockets) SD_BUS_PARAM(kind)
                                         SD_BUS_PARAM(id) SD_BUS_PARAM(options),
                                 "oas", SD_BUS_PARAM(emulator) SD_BUS_PARAM(qemu_args),
                                 method_prepare, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Reload", "", "", method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Kill", "s", SD_BUS_PARAM(id), "", , method_kill,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("QmpSocket", "s", SD_BUS_PARAM(vm), "s", SD_BUS_PARAM(path),
                                 method_qmp_socket, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("PolicyDump", "s", SD_BUS_PARAM(id), "s", SD_BUS_PARAM(policy),
                                 method_policy_dump, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Shutdown", "b", SD_BUS_PARAM(stop_emulators), "", ,
                                 method_shutdown, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("List", "", , "a(" EMU_BUS_ROW_EMULATOR ")", SD_BUS_PARAM(emulators),
                                 method_list, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListVMs", "", , "a(" EMU_BUS_ROW_VM ")", SD_BUS_PARAM(vms),
                                 method_list_vms, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListKinds", "", , "a(" EMU_BUS_ROW_KIND ")", SD_BUS_PARAM(kinds),
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
                return sd_bus_message_append(reply, "s", emulator_socket(e));
        if (g_str_equal(property, "RestartPolicy"))
                return sd_bus_message_append(reply, "s", emu_restart_name(e->restart));
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
        /* In a libvirt domain: the alias libvirt gave it, once QEMU runs. */
        EMU_PROP("Device", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("Socket", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        EMU_PROP("State", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("Pid", "u", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("Restarts", "u", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("Reason", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("Slot", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("RestartPolicy", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("LastExit", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("ExitStatus", "i", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("ExitSignal", "i", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("CoreDumped", "b", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        EMU_PROP("SeccompMode", "s", SD_BUS_VTABLE_PROPERTY_CONST),
        EMU_PROP("SeccompReport", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};

/* Fallback vtable: the emulator a path names, looked up when a call arrives. */
static int find_emulator(sd_bus *bus, const char *path, const char *interface, void *userdata,
                         void **ret_found, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        g_autofree char *id = emu_bus_emulator_id(path);
        Emulator *e = id ? g_hash_table_lookup(b->m->emulators, id) : NULL;
        if (!e)
                return 0;
        *ret_found = e;
        return 1;
}

static int enumerate_emulators(sd_bus *bus, const char *prefix, void *userdata,
                               char ***ret_nodes, sd_bus_error *ret_error)
{
        BusService *b = userdata;
        g_autoptr(GPtrArray) all = manager_sorted_emulators(b->m);
        /* sd-bus frees the list with free(): allocate it with malloc. */
        char **nodes = calloc(all->len + 1, sizeof(char *));
        if (!nodes)
                return -ENOMEM;
        for (guint i = 0; i < all->len; i++) {
                const Emulator *e = g_ptr_array_index(all, i);
                if (sd_bus_path_encode(EMU_BUS_EMULATOR_PREFIX, e->id, &nodes[i]) < 0) {
                        for (guint j = 0; j < i; j++)
                                free(nodes[j]);
                        free(nodes);
                        return -ENOMEM;
                }
        }
        *ret_nodes = nodes;
        return 0;
}

static void on_emulator_changed(void *userdata, Emulator *e, unsigned mask)
{
        BusService *b = userdata;
        g_autofree char *path = emu_bus_emulator_path(e->id);
        if (!path)
                return;
        if (mask & EMU_DIRTY_NEW)
                (void)sd_bus_emit_object_added(b->bus, path);
        else if (mask & (EMU_DIRTY_STATE | EMU_DIRTY_PROPS))
                (void)sd_bus_emit_properties_changed(b->bus, path, EMU_BUS_EMULATOR_IFACE,
                                                     "State", "Pid", "Restarts", "Reason",
                                                     "Slot", "LastExit", "ExitStatus",
                                                     "ExitSignal", "CoreDumped",
                                                     "SeccompReport", "Device",
                                                     "RestartPolicy", NULL);
}

static void on_emulator_removed(void *userdata, Emulator *e)
{
        BusService *b = userdata;
        g_autofree char *path = emu_bus_emulator_path(e->id);
        if (path)
                (void)sd_bus_emit_object_removed(b->bus, path);
}

static const ManagerObserver observer = {
        .emulator_changed = on_emulator_changed,
        .emulator_removed = on_emulator_removed,
};

int bus_service_new(Manager *m, QmpService *qmp, sd_bus *bus, BusService **ret)
{
        g_autoptr(BusService) b = g_new0(BusService, 1);
        b->m = m;
        b->qmp = qmp;
        b->bus = sd_bus_ref(bus);
        int r = sd_bus_add_object_vtable(bus, NULL, EMU_BUS_MANAGER_PATH, EMU_BUS_MANAGER_IFACE,
                                         manager_vtable, b);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(bus, NULL, EMU_BUS_EMULATOR_PREFIX,
                                               EMU_BUS_EMULATOR_IFACE, emulator_vtable,
                                               find_emulator, b);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(bus, NULL, EMU_BUS_EMULATOR_PREFIX,
                                               enumerate_emulators, b);
        if (r >= 0)
                r = sd_bus_add_object_manager(bus, NULL, EMU_BUS_ROOT);
        if (r < 0)
                return r;
        manager_add_observer(m, &observer, b);
        *ret = g_steal_pointer(&b);
        return 0;
}

void bus_service_free(BusService *b)
{
        if (!b)
                return;
        if (b->shutdown_reply)
                sd_bus_message_unref(b->shutdown_reply);
        sd_bus_unref(b->bus);
        g_free(b);
}

void bus_service_shutdown_done(BusService *b)
{
        if (!b->shutdown_reply)
                return;
        (void)sd_bus_reply_method_return(b->shutdown_reply, NULL);
        b->shutdown_reply = sd_bus_message_unref(b->shutdown_reply);
}
