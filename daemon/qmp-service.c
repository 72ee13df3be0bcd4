/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qmp-service: the management stack's door to a VM. One QMP socket per VM
 * reaches QEMU (through the proxy in qmp-proxy/) and, with the commands
 * registered here, emud and every emulator behind it. Everything goes
 * through the manager's API; this file keeps only its own data: the
 * proxies, and the last state event each emulator's clients were sent.
 *
 * Commands follow the QMP spec's rule for downstream extensions: the
 * "__org.emud_" prefix. Their errors use QMP's classes; an emulator's own
 * error comes back with the class it gave.
 */
#include "emu-error.h"
#include "emu-log.h"
#include "proxy.h"
#include "qmp-service.h"

struct QmpService {
        Manager *m;
        GHashTable *proxies; /* VM name → VmProxy */
        GHashTable *sent;    /* emulator → last "state pid" sent as EMULATOR_STATE */
};

typedef struct {
        QmpService *qs;
        const Vm *vm;
        char *name;
        EmuQmpProxy *proxy;
} VmProxy;

static void vm_proxy_free(VmProxy *vp)
{
        emu_qmp_proxy_free(vp->proxy);
        g_free(vp->name);
        g_free(vp);
}

static char *socket_path(const Vm *vm)
{
        return g_build_filename(vm->dir, "qmp.sock", NULL);
}

char *qmp_service_socket(QmpService *qs, const char *name, GError **error)
{
        Vm *vm = manager_find_vm(qs->m, name, error);
        if (!vm)
                return NULL;
        if (!g_hash_table_contains(qs->proxies, name)) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                            "VM %s has no QMP proxy socket (it is %s)", name,
                            vm_state_name(vm->state));
                return NULL;
        }
        return socket_path(vm);
}

static void request_error(EmuQmpProxyRequest *req, const GError *error)
{
        EmuQmpErrorClass cls = error->domain == EMU_QMP_ERROR ? (EmuQmpErrorClass)error->code
                               : error->domain == EMU_ERROR &&
                                               error->code == EMU_ERROR_UNKNOWN_EMULATOR
                                       ? EMU_QMP_ERROR_DEVICE_NOT_FOUND
                                       : EMU_QMP_ERROR_GENERIC;
        emu_qmp_proxy_request_error(req, cls, "%s", error->message);
}

static void request_done(void *userdata, const GError *error)
{
        EmuQmpProxyRequest *req = userdata;
        if (error)
                request_error(req, error);
        else
                emu_qmp_proxy_request_return(req, json_object());
}

static void request_replied(void *userdata, json_t *ret, const GError *error)
{
        EmuQmpProxyRequest *req = userdata;
        if (error)
                request_error(req, error);
        else
                emu_qmp_proxy_request_return(req, json_incref(ret));
}

/* A string argument, or an error sent for it. */
static const char *need_string(json_t *args, const char *key, EmuQmpProxyRequest *req)
{
        const char *v = json_string_value(json_object_get(args, key));
        if (!v)
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                            "Parameter '%s' is missing", key);
        return v;
}

/* An optional object argument; false (error sent) when it is there but not an object. */
static bool optional_object(json_t *args, const char *key, json_t **ret,
                            EmuQmpProxyRequest *req)
{
        *ret = json_object_get(args, key);
        if (*ret && !json_is_object(*ret)) {
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                            "Invalid parameter type for '%s', expected: object",
                                            key);
                return false;
        }
        return true;
}

static json_t *describe(const Emulator *e)
{
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "id", e->id, "kind",
                              e->kind->name, "state", emu_state_name(e->state), "pid",
                              (json_int_t)e->proc.pid, "restarts", (json_int_t)e->restarts,
                              "device", e->qdev_id, "socket", emulator_socket(e));
        if (e->slot)
                json_object_set_new(o, "slot", json_string(e->slot));
        if (e->reason)
                json_object_set_new(o, "reason", json_string(e->reason));
        return o;
}

static void cmd_query_emulators(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req,
                                void *userdata)
{
        VmProxy *vp = userdata;
        g_autoptr(GPtrArray) all = manager_sorted_emulators(vp->qs->m);
        json_t *list = json_array();
        for (guint i = 0; i < all->len; i++) {
                const Emulator *e = g_ptr_array_index(all, i);
                if (e->vm == vp->vm)
                        json_array_append_new(list, describe(e));
        }
        emu_qmp_proxy_request_return(req, list);
}

/* "options" as a name → value table; NULL (error sent) when it is not all strings. */
static GHashTable *read_options(json_t *args, EmuQmpProxyRequest *req)
{
        json_t *options;
        if (!optional_object(args, "options", &options, req))
                return NULL;
        g_autoptr(GHashTable) table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                            g_free);
        const char *key;
        json_t *value;
        json_object_foreach (options, key, value) {
                if (!json_is_string(value)) {
                        emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                                    "Option '%s' must be a string", key);
                        return NULL;
                }
                g_hash_table_insert(table, g_strdup(key), g_strdup(json_string_value(value)));
        }
        return g_steal_pointer(&table);
}

static void cmd_spawn(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req, void *userdata)
{
        VmProxy *vp = userdata;
        const char *kind = need_string(args, "kind", req);
        const char *id = kind ? need_string(args, "id", req) : NULL;
        g_autoptr(GHashTable) table = id ? read_options(args, req) : NULL;
        if (table)
                manager_spawn(vp->qs->m, vp->name, kind, id, table, request_done, req);
}

typedef struct {
        Manager *m;
        EmuQmpProxyRequest *req;
        char *id;
} Preparation;

static void prepare_done(void *userdata, const GError *error)
{
        Preparation *pr = userdata;
        Emulator *e = error ? NULL : manager_find_emulator(pr->m, NULL, pr->id, NULL);
        if (error) {
                request_error(pr->req, error);
        } else if (!e) {
                emu_qmp_proxy_request_error(pr->req, EMU_QMP_ERROR_GENERIC,
                                            "Emulator '%s' went away", pr->id);
        } else {
                g_auto(GStrv) qemu_args = emulator_qemu_args(e);
                json_t *list = json_array();
                for (char **a = qemu_args; *a; a++)
                        json_array_append_new(list, json_string(*a));
                emu_qmp_proxy_request_return(pr->req, json_pack("{s:s, s:o}", "id", pr->id,
                                                                   "qemu-args", list));
        }
        g_free(pr->id);
        g_free(pr);
}

/*
 * Cold-plug from a running VM's socket, for another VM whose QEMU has not
 * started (a migration target, say): "vm" names that VM.
 */
static void cmd_prepare(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req, void *userdata)
{
        VmProxy *vp = userdata;
        const char *vm = need_string(args, "vm", req);
        const char *kind = vm ? need_string(args, "kind", req) : NULL;
        const char *id = kind ? need_string(args, "id", req) : NULL;
        json_t *qmp = json_object_get(args, "qmp");
        if (id && qmp && !json_is_string(qmp)) {
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                            "Invalid parameter type for 'qmp', expected: string");
                return;
        }
        g_autoptr(GHashTable) table = id ? read_options(args, req) : NULL;
        if (!table)
                return;
        const char *paths[] = { json_string_value(qmp), NULL };
        Preparation *pr = g_new0(Preparation, 1);
        pr->m = vp->qs->m;
        pr->req = req;
        pr->id = g_strdup(id);
        manager_prepare(vp->qs->m, vm, paths, kind, id, table, prepare_done, pr);
}

static void cmd_kill(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req, void *userdata)
{
        VmProxy *vp = userdata;
        const char *id = need_string(args, "id", req);
        if (id)
                manager_kill(vp->qs->m, vp->name, id, request_done, req);
}

static void cmd_emulator_execute(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req,
                                 void *userdata)
{
        VmProxy *vp = userdata;
        json_t *arguments;
        const char *id = need_string(args, "emulator", req);
        const char *execute = id ? need_string(args, "execute", req) : NULL;
        if (!execute || !optional_object(args, "arguments", &arguments, req))
                return;
        g_autoptr(GError) err = NULL;
        if (!manager_emulator_execute(vp->qs->m, vp->name, id, execute,
                                      arguments ? json_incref(arguments) : NULL,
                                      request_replied, req, &err))
                request_error(req, err);
}

static void start_proxy(QmpService *qs, const Vm *vm)
{
        const EmudConfig *cfg = qs->m->cfg;
        EmuLogCtx ctx = { .vm = vm->name };
        EmuQmpProxyConfig pc;
        emu_qmp_proxy_config_init(&pc);
        pc.mode = cfg->qmp_socket_mode;
        pc.owner = cfg->qmp_socket_uid;
        pc.group = cfg->qmp_socket_gid;
        pc.max_message = cfg->qmp_max_message;
        pc.max_in_flight = cfg->qmp_max_in_flight;
        g_autofree char *path = socket_path(vm);
        g_autoptr(GError) err = NULL;
        VmProxy *vp = g_new0(VmProxy, 1);
        vp->qs = qs;
        vp->vm = vm;
        vp->name = g_strdup(vm->name);
        vp->proxy = emu_qmp_proxy_new(vm->qmp, path, &pc, &err);
        static const struct {
                const char *name;
                EmuQmpProxyCommandFunc fn;
        } commands[] = {
                { "__org.emud_query-emulators", cmd_query_emulators },
                { "__org.emud_spawn", cmd_spawn },
                { "__org.emud_kill", cmd_kill },
                { "__org.emud_prepare", cmd_prepare },
                { "__org.emud_emulator-execute", cmd_emulator_execute },
        };
        for (size_t i = 0; vp->proxy && i < G_N_ELEMENTS(commands); i++)
                if (!emu_qmp_proxy_add_command(vp->proxy, commands[i].name, commands[i].fn, vp,
                                               &err))
                        g_clear_pointer(&vp->proxy, emu_qmp_proxy_free);
        if (!vp->proxy) {
                emu_warn(&ctx, "no QMP proxy socket: %s", err->message);
                vm_proxy_free(vp);
                return;
        }
        for (guint i = 0; i < vm->extra_qmp->len; i++)
                emu_qmp_proxy_add_upstream(vp->proxy, g_ptr_array_index(vm->extra_qmp, i));
        g_hash_table_insert(qs->proxies, vp->name, vp);
        emu_info(&ctx, "QMP proxy listening on %s", path);
}

static void on_vm_changed(void *userdata, Vm *vm)
{
        QmpService *qs = userdata;
        VmProxy *vp = g_hash_table_lookup(qs->proxies, vm->name);
        if (vp && vp->vm == vm && vm->removed)
                g_hash_table_remove(qs->proxies, vm->name);
        else if (!vp && !vm->removed && vm->state == VM_CONNECTED && vm->qmp)
                start_proxy(qs, vm);
}

static EmuQmpProxy *proxy_of(QmpService *qs, const Vm *vm)
{
        VmProxy *vp = g_hash_table_lookup(qs->proxies, vm->name);
        return vp && vp->vm == vm ? vp->proxy : NULL;
}

static void on_emulator_changed(void *userdata, Emulator *e, unsigned mask)
{
        QmpService *qs = userdata;
        EmuQmpProxy *proxy = proxy_of(qs, e->vm);
        if (!proxy || !(mask & EMU_DIRTY_STATE))
                return;
        g_autofree char *now = g_strdup_printf("%d %d", (int)e->state, (int)e->proc.pid);
        if (g_strcmp0(now, g_hash_table_lookup(qs->sent, e)) == 0)
                return;
        g_hash_table_insert(qs->sent, e, g_steal_pointer(&now));
        json_t *data = json_pack("{s:s, s:s}", "emulator", e->id, "state",
                                 emu_state_name(e->state));
        if (e->proc.pid > 0)
                json_object_set_new(data, "pid", json_integer(e->proc.pid));
        if (e->reason)
                json_object_set_new(data, "reason", json_string(e->reason));
        if (e->last_exit.text &&
            (e->state == EMU_STATE_RESTARTING || e->state == EMU_STATE_FAILED))
                json_object_set_new(data, "last-exit", json_string(e->last_exit.text));
        emu_qmp_proxy_emit_event(proxy, "__org.emud_EMULATOR_STATE", data);
}

static void on_emulator_removed(void *userdata, Emulator *e)
{
        QmpService *qs = userdata;
        g_hash_table_remove(qs->sent, e);
}

static void on_event(void *userdata, Vm *vm, const char *name, json_t *data)
{
        QmpService *qs = userdata;
        EmuQmpProxy *proxy = proxy_of(qs, vm);
        if (proxy)
                emu_qmp_proxy_emit_event(proxy, name, json_incref(data));
}

static const ManagerObserver observer = {
        .emulator_changed = on_emulator_changed,
        .emulator_removed = on_emulator_removed,
        .vm_changed = on_vm_changed,
        .event = on_event,
};

QmpService *qmp_service_new(Manager *m)
{
        QmpService *qs = g_new0(QmpService, 1);
        qs->m = m;
        qs->proxies = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify)vm_proxy_free);
        qs->sent = g_hash_table_new_full(NULL, NULL, NULL, g_free);
        manager_add_observer(m, &observer, qs);
        return qs;
}

void qmp_service_free(QmpService *qs)
{
        if (!qs)
                return;
        g_hash_table_unref(qs->proxies);
        g_hash_table_unref(qs->sent);
        g_free(qs);
}
