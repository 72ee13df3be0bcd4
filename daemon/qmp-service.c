/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qmp-service: the management stack's door to a VM. One QMP socket per VM
 * reaches QEMU (through the proxy in qmp-proxy/) and, with the commands
 * registered here, emud and every emulator behind it.
 *
 * Commands follow the QMP spec's rule for downstream extensions: the
 * "__org.emud_" prefix. Their errors use QMP's classes; an emulator's own
 * error comes back with the class it gave.
 */
#include <glib/gstdio.h>

#include "emu-error.h"
#include "emu-log.h"
#include "proxy.h"
#include "qmp-service.h"

char *qmp_service_socket_path(const Vm *vm)
{
        return g_build_filename(vm->dir, "qmp.sock", NULL);
}

static Emulator *find_emulator(Vm *vm, json_t *args, const char *key, EmuQmpProxyRequest *req)
{
        const char *id = json_string_value(json_object_get(args, key));
        if (!id) {
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                            "Parameter '%s' is missing", key);
                return NULL;
        }
        Emulator *e = g_hash_table_lookup(vm->m->emulators, id);
        if (!e || e->vm != vm) {
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_DEVICE_NOT_FOUND,
                                            "Emulator '%s' not found on VM %s", id, vm->name);
                return NULL;
        }
        return e;
}

static json_t *describe(const Emulator *e)
{
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "id", e->id, "kind",
                              e->kind->name, "state", emu_state_name(e->state), "pid",
                              (json_int_t)e->proc.pid, "restarts", (json_int_t)e->restarts,
                              "device", e->qdev_id, "socket", e->socket_path);
        if (e->slot)
                json_object_set_new(o, "slot", json_string(e->slot));
        if (e->reason)
                json_object_set_new(o, "reason", json_string(e->reason));
        return o;
}

static void cmd_query_emulators(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req,
                                void *userdata)
{
        Vm *vm = userdata;
        g_autoptr(GList) all = g_hash_table_get_values(vm->m->emulators);
        json_t *list = json_array();
        for (GList *l = all; l; l = l->next) {
                Emulator *e = l->data;
                if (e->vm == vm)
                        json_array_append_new(list, describe(e));
        }
        emu_qmp_proxy_request_return(req, list);
}

static void request_done(void *userdata, const GError *error)
{
        EmuQmpProxyRequest *req = userdata;
        if (error)
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC, "%s", error->message);
        else
                emu_qmp_proxy_request_return(req, json_object());
}

static void cmd_spawn(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req, void *userdata)
{
        Vm *vm = userdata;
        const char *kind = json_string_value(json_object_get(args, "kind"));
        const char *id = json_string_value(json_object_get(args, "id"));
        json_t *options = json_object_get(args, "options");
        if (!kind || !id) {
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                            "Parameter '%s' is missing", kind ? "id" : "kind");
                return;
        }
        if (options && !json_is_object(options)) {
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                            "Invalid parameter type for 'options', expected: "
                                            "object");
                return;
        }
        g_autoptr(GHashTable) table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                            g_free);
        const char *key;
        json_t *value;
        json_object_foreach (options, key, value) {
                if (!json_is_string(value)) {
                        emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                                    "Option '%s' must be a string", key);
                        return;
                }
                g_hash_table_insert(table, g_strdup(key), g_strdup(json_string_value(value)));
        }
        manager_spawn(vm->m, vm->name, kind, id, table, request_done, req);
}

static void cmd_kill(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req, void *userdata)
{
        Emulator *e = find_emulator(userdata, args, "id", req);
        if (e)
                emulator_kill(e, request_done, req);
}

/*
 * A command on an emulator's monitor in flight: the client drops its
 * callbacks when it is freed (the emulator died or restarted), so the
 * emulator keeps a list and answers them itself then.
 */
typedef struct {
        Emulator *e;
        EmuQmpProxyRequest *req;
} Execution;

static void on_emulator_reply(EmuQmpClient *c, json_t *ret, const GError *error,
                              void *userdata)
{
        Execution *x = userdata;
        EmuQmpProxyRequest *req = x->req;
        g_ptr_array_remove_fast(x->e->executions, x);
        g_free(x);
        if (!error) {
                emu_qmp_proxy_request_return(req, json_incref(ret));
                return;
        }
        EmuQmpErrorClass cls = error->domain == EMU_QMP_ERROR ? (EmuQmpErrorClass)error->code
                                                              : EMU_QMP_ERROR_GENERIC;
        emu_qmp_proxy_request_error(req, cls, "%s", error->message);
}

static void cmd_emulator_execute(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req,
                                 void *userdata)
{
        Vm *vm = userdata;
        Emulator *e = find_emulator(vm, args, "emulator", req);
        if (!e)
                return;
        const char *execute = json_string_value(json_object_get(args, "execute"));
        json_t *arguments = json_object_get(args, "arguments");
        if (!execute) {
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                            "Parameter 'execute' is missing");
                return;
        }
        if (arguments && !json_is_object(arguments)) {
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                            "Invalid parameter type for 'arguments', "
                                            "expected: object");
                return;
        }
        if (!e->qmp || !emu_qmp_client_is_ready(e->qmp)) {
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                            "Emulator '%s' has no QMP monitor to talk to (%s)",
                                            e->id, emu_state_name(e->state));
                return;
        }
        Execution *x = g_new0(Execution, 1);
        x->e = e;
        x->req = req;
        g_ptr_array_add(e->executions, x);
        emu_qmp_client_execute(e->qmp, execute, arguments ? json_incref(arguments) : NULL,
                               vm->m->cfg->qmp_timeout_ms, on_emulator_reply, x);
}

void qmp_service_monitor_gone(Emulator *e)
{
        while (e->executions->len) {
                Execution *x = g_ptr_array_steal_index_fast(e->executions, 0);
                emu_qmp_proxy_request_error(x->req, EMU_QMP_ERROR_GENERIC,
                                            "Emulator '%s' went away before it answered (%s)",
                                            e->id, emu_state_name(e->state));
                g_free(x);
        }
}

bool qmp_service_start(Vm *vm, GError **error)
{
        const EmudConfig *cfg = vm->m->cfg;
        if (vm->proxy || !vm->qmp)
                return true;
        EmuQmpProxyConfig pc;
        emu_qmp_proxy_config_init(&pc);
        pc.mode = cfg->qmp_socket_mode;
        pc.owner = cfg->qmp_socket_uid;
        pc.group = cfg->qmp_socket_gid;
        pc.max_message = cfg->qmp_max_message;
        pc.max_in_flight = cfg->qmp_max_in_flight;
        g_autofree char *path = qmp_service_socket_path(vm);
        vm->proxy = emu_qmp_proxy_new(vm->qmp, path, &pc, error);
        if (!vm->proxy)
                return false;
        for (guint i = 0; i < vm->extra_qmp->len; i++)
                emu_qmp_proxy_add_upstream(vm->proxy, g_ptr_array_index(vm->extra_qmp, i));
        static const struct {
                const char *name;
                EmuQmpProxyCommandFunc fn;
        } commands[] = {
                { "__org.emud_query-emulators", cmd_query_emulators },
                { "__org.emud_spawn", cmd_spawn },
                { "__org.emud_kill", cmd_kill },
                { "__org.emud_emulator-execute", cmd_emulator_execute },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
                if (!emu_qmp_proxy_add_command(vm->proxy, commands[i].name, commands[i].fn, vm,
                                               error))
                        return false;
        EmuLogCtx ctx = { .vm = vm->name };
        emu_info(&ctx, "QMP proxy listening on %s", path);
        return true;
}

void qmp_service_stop(Vm *vm)
{
        g_clear_pointer(&vm->proxy, emu_qmp_proxy_free);
}

void qmp_service_emulator_state(Emulator *e)
{
        if (!e->vm->proxy)
                return;
        if ((int)e->state == e->event_state && e->proc.pid == e->event_pid)
                return;
        e->event_state = (int)e->state;
        e->event_pid = e->proc.pid;
        json_t *data = json_pack("{s:s, s:s}", "emulator", e->id, "state",
                                 emu_state_name(e->state));
        if (e->proc.pid > 0)
                json_object_set_new(data, "pid", json_integer(e->proc.pid));
        if (e->reason)
                json_object_set_new(data, "reason", json_string(e->reason));
        if (e->last_exit.text && (e->state == EMU_STATE_RESTARTING ||
                                  e->state == EMU_STATE_FAILED))
                json_object_set_new(data, "last-exit", json_string(e->last_exit.text));
        emu_qmp_proxy_emit_event(e->vm->proxy, "__org.emud_EMULATOR_STATE", data);
}

void qmp_service_emulator_seccomp(Emulator *e, const EmuSeccompReport *r, const char *message)
{
        if (!e->vm->proxy)
                return;
        static const char *const verdicts[] = {
                [EMU_SECCOMP_DENIED_KILLED] = "denied-killed",
                [EMU_SECCOMP_DENIED] = "denied",
                [EMU_SECCOMP_ALLOWED] = "allowed",
        };
        json_t *args = json_array();
        for (size_t i = 0; i < G_N_ELEMENTS(r->args); i++)
                json_array_append_new(args, json_integer((json_int_t)r->args[i]));
        json_t *data = json_pack("{s:s, s:s, s:i, s:s, s:o, s:s, s:s}", "emulator", e->id,
                                 "syscall", r->name, "nr", r->nr, "call", r->call, "args",
                                 args, "verdict", verdicts[r->verdict], "message", message);
        emu_qmp_proxy_emit_event(e->vm->proxy, "__org.emud_EMULATOR_SECCOMP", data);
}

void qmp_service_emulator_event(Emulator *e, const char *name, json_t *data)
{
        if (!e->vm->proxy)
                return;
        json_t *wrapped = json_pack("{s:s, s:s}", "emulator", e->id, "event", name);
        if (data)
                json_object_set(wrapped, "data", data);
        emu_qmp_proxy_emit_event(e->vm->proxy, "__org.emud_EMULATOR_EVENT", wrapped);
}
