/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emulator-qmp: the steps an emulator takes in the VM's QEMU, each one QMP
 * command: finding a free pcie-root-port, chardev-add, device_add,
 * device_del, chardev-remove, and probing whether a device is there (for
 * adoption after an emud restart). Each step records its outcome in the
 * Emulator and returns to emulator_advance(), which decides what is next;
 * none of them decides anything itself.
 */
#include <string.h>

#include "emu-error.h"
#include "emu-util.h"
#include "emulator-internal.h"
#include "qmp-codec.h"

typedef struct {
        Emulator *e;
        StepFunc step;
} StepCall;

void *emulator_step_begin(Emulator *e, StepFunc step)
{
        StepCall *call = g_new0(StepCall, 1);
        call->e = e;
        call->step = step;
        e->qmp_busy = true;
        return call;
}

void emulator_step_reply(void *userdata, json_t *ret, const GError *error)
{
        StepCall *call = userdata;
        Emulator *e = call->e;
        StepFunc step = call->step;
        g_free(call);
        e->qmp_busy = false;
        step(e, ret, error);
        emulator_advance(e);
}

static void on_step_reply(EmuQmpClient *c, json_t *ret, const GError *error, void *userdata)
{
        emulator_step_reply(userdata, ret, error);
}

/* With fd (taken over; -1 for none) sent along as SCM_RIGHTS. */
static void vm_execute_fd(Emulator *e, const char *command, json_t *args, int fd,
                          StepFunc step)
{
        emu_qmp_client_execute_fd(e->vm->qmp, command, args, fd, e->cfg->qmp_timeout_ms,
                                  on_step_reply, emulator_step_begin(e, step));
}

void emulator_vm_execute(Emulator *e, const char *command, json_t *args, StepFunc step)
{
        vm_execute_fd(e, command, args, -1, step);
}

/* ---- finding a slot ----------------------------------------------------- */

/* Natural order, so that rp2 comes before rp10. */
static gint slot_cmp(gconstpointer a, gconstpointer b)
{
        const char *x = *(const char *const *)a, *y = *(const char *const *)b;
        size_t lx = strlen(x), ly = strlen(y);
        return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

/* Root ports that have a device behind them, anywhere in query-pci's tree. */
static void collect_occupied(json_t *devices, GHashTable *occupied)
{
        size_t i;
        json_t *dev;
        json_array_foreach (devices, i, dev) {
                json_t *bridge = json_object_get(dev, "pci_bridge");
                json_t *below = json_object_get(bridge, "devices");
                const char *qdev = json_string_value(json_object_get(dev, "qdev_id"));
                if (qdev && json_array_size(below) > 0)
                        g_hash_table_add(occupied, g_strdup(qdev));
                collect_occupied(below, occupied);
        }
}

static void step_query_pci(Emulator *e, json_t *ret, const GError *error)
{
        g_auto(GStrv) candidates = g_steal_pointer(&e->slot_candidates);
        if (error) {
                emulator_fail(e, EMU_ERROR_QMP_UNAVAILABLE, "query-pci on VM %s failed: %s",
                              e->vm->name, error->message);
                return;
        }
        g_autoptr(GHashTable) occupied = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                               g_free, NULL);
        size_t i;
        json_t *bus;
        json_array_foreach (ret, i, bus)
                collect_occupied(json_object_get(bus, "devices"), occupied);
        for (char **c = candidates; *c; c++) {
                if (g_hash_table_contains(occupied, *c) ||
                    g_hash_table_contains(e->vm->reserved, *c))
                        continue;
                e->slot = g_strdup(*c);
                g_hash_table_add(e->vm->reserved, g_strdup(*c));
                return;
        }
        g_autofree char *list = g_strjoinv(", ", candidates);
        emulator_fail(e, EMU_ERROR_NO_FREE_SLOT, "every hotplug slot of VM %s is in use (%s)",
                      e->vm->name, list);
}

static void step_qom_list(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                emulator_fail(e, EMU_ERROR_QMP_UNAVAILABLE,
                              "cannot list the devices of VM %s: %s", e->vm->name,
                              error->message);
                return;
        }
        g_autoptr(GPtrArray) ports = g_ptr_array_new_with_free_func(g_free);
        size_t i;
        json_t *prop;
        json_array_foreach (ret, i, prop) {
                const char *type = json_string_value(json_object_get(prop, "type"));
                const char *name = json_string_value(json_object_get(prop, "name"));
                if (name && type && g_str_equal(type, "child<pcie-root-port>"))
                        g_ptr_array_add(ports, g_strdup(name));
        }
        if (ports->len == 0) {
                emulator_fail(e, EMU_ERROR_NO_FREE_SLOT,
                              "VM %s has no pcie-root-port to hot-plug into (start QEMU with "
                              "-device pcie-root-port,id=rp1,chassis=1,slot=1)",
                              e->vm->name);
                return;
        }
        g_ptr_array_sort(ports, slot_cmp);
        g_ptr_array_add(ports, NULL);
        e->slot_candidates = (char **)g_ptr_array_free(g_steal_pointer(&ports), FALSE);
        emulator_vm_execute(e, "query-pci", NULL, step_query_pci);
}

void emulator_find_slot(Emulator *e)
{
        e->slot_search = true;
        emulator_vm_execute(e, "qom-list", json_pack("{s:s}", "path", "/machine/peripheral"),
                            step_qom_list);
}

void emulator_release_slot(Emulator *e)
{
        if (e->slot)
                g_hash_table_remove(e->vm->reserved, e->slot);
}

/* ---- plugging ----------------------------------------------------------- */

static void step_chardev_add(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                emulator_fail(e, EMU_ERROR_HOTPLUG_FAILED, "chardev-add on VM %s failed: %s",
                              e->vm->name, error->message);
                return;
        }
        e->chardev_added = true;
}

void emulator_add_chardev(Emulator *e)
{
        json_t *data = json_pack("{s:{s:s, s:{s:s}}, s:b}", "addr", "type", "unix", "data",
                                 "path", e->socket_path, "server", 0);
        if (e->kind->reconnect)
                vm_set_reconnect(e->vm, data);
        json_t *args = json_pack("{s:s, s:{s:s, s:o}}", "id", e->chardev_id, "backend", "type",
                                 "socket", "data", data);
        emulator_vm_execute(e, "chardev-add", args, step_chardev_add);
}

static void step_getfd(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                emulator_fail(e, EMU_ERROR_HOTPLUG_FAILED, "getfd on VM %s failed: %s",
                              e->vm->name, error->message);
                return;
        }
        e->fd_sent = true;
}

void emulator_send_fd(Emulator *e)
{
        /* The client sends it with the command and closes emud's copy. */
        vm_execute_fd(e, "getfd", json_pack("{s:s}", "fdname", e->fd_name),
                      emu_steal_fd(&e->remote_fd), step_getfd);
}

static void step_closefd(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                EmuLogCtx ctx = emulator_log_ctx(e);
                emu_warn(&ctx, "closefd %s failed: %s", e->fd_name, error->message);
        }
        e->fd_sent = false;
}

void emulator_close_fd(Emulator *e)
{
        emulator_vm_execute(e, "closefd", json_pack("{s:s}", "fdname", e->fd_name),
                            step_closefd);
}

static void step_device_add(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                emulator_fail(e, EMU_ERROR_HOTPLUG_FAILED, "device_add %s on VM %s failed: %s",
                              e->kind->driver, e->vm->name, error->message);
                return;
        }
        e->device_added = true;
        e->fd_sent = false; /* the device took it */
}

json_t *emulator_device_args(const Emulator *e)
{
        json_t *args = json_deep_copy(e->plan->device_args);
        json_object_set_new(args, "id", json_string(e->qdev_id));
        if (e->kind->chardev_property)
                json_object_set_new(args, e->kind->chardev_property,
                                    json_string(e->chardev_id));
        else if (e->kind->fd_property)
                json_object_set_new(args, e->kind->fd_property, json_string(e->fd_name));
        else
                json_object_set_new(args, e->kind->socket_property,
                                    json_pack("{s:s, s:s}", "type", "unix", "path",
                                              e->socket_path));
        return args;
}

void emulator_add_device(Emulator *e)
{
        if (e->vm->libvirt) {
                emulator_libvirt_attach(e);
                return;
        }
        json_t *args = emulator_device_args(e);
        json_object_set_new(args, "bus", json_string(e->slot));
        emulator_vm_execute(e, "device_add", args, step_device_add);
}

/* ---- unplugging --------------------------------------------------------- */

/* QEMU would not let the device go: emulator_advance() decides what that means. */
static void unplug_refused(Emulator *e, int code, const char *msg)
{
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_warn(&ctx, "%s", msg);
        emulator_set_reason(e, msg);
        if (!e->unplug_error)
                e->unplug_error = g_error_new_literal(EMU_ERROR, code, msg);
}

static gboolean on_unplug_timeout(gpointer userdata)
{
        Emulator *e = userdata;
        e->timer = 0;
        e->unplug_waiting = false;
        g_autofree char *msg = g_strdup_printf(
                "the guest did not release device %s within %u ms; it stays in QEMU as it is",
                e->qdev_id, e->cfg->unplug_timeout_ms);
        unplug_refused(e, EMU_ERROR_TIMEOUT, msg);
        emulator_advance(e);
        return G_SOURCE_REMOVE;
}

static void step_device_del(Emulator *e, json_t *ret, const GError *error)
{
        if (error && g_error_matches(error, EMU_QMP_ERROR, EMU_QMP_ERROR_DEVICE_NOT_FOUND)) {
                e->device_added = false;
                return;
        }
        if (error) {
                g_autofree char *msg = g_strdup_printf("device_del %s failed: %s", e->qdev_id,
                                                       error->message);
                unplug_refused(e, EMU_ERROR_HOTPLUG_FAILED, msg);
                return;
        }
        if (!e->device_added)
                return; /* DEVICE_DELETED came before the reply */
        e->unplug_waiting = true;
        emulator_set_timer(e, e->cfg->unplug_timeout_ms, on_unplug_timeout);
}

void emulator_del_device(Emulator *e)
{
        if (e->vm->libvirt) {
                emulator_libvirt_detach(e, step_device_del);
                return;
        }
        emulator_vm_execute(e, "device_del", json_pack("{s:s}", "id", e->qdev_id),
                            step_device_del);
}

static void step_chardev_remove(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                EmuLogCtx ctx = emulator_log_ctx(e);
                emu_warn(&ctx, "chardev-remove %s failed: %s", e->chardev_id, error->message);
        }
        e->chardev_added = false;
}

void emulator_remove_chardev(Emulator *e)
{
        emulator_vm_execute(e, "chardev-remove", json_pack("{s:s}", "id", e->chardev_id),
                            step_chardev_remove);
}

/* ---- probing (adoption) ------------------------------------------------- */

static void step_probe_chardev(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                /* Do not roll back on a failed question: keep what the state file said. */
                EmuLogCtx ctx = emulator_log_ctx(e);
                emu_warn(&ctx, "cannot list QEMU's chardevs (%s); assuming %s is there",
                         error->message, e->chardev_id);
                e->chardev_added = true;
                e->probed = true;
                return;
        }
        e->chardev_added = false;
        size_t i;
        json_t *c;
        json_array_foreach (ret, i, c) {
                const char *label = json_string_value(json_object_get(c, "label"));
                if (label && g_str_equal(label, e->chardev_id))
                        e->chardev_added = true;
        }
        e->probed = true;
}

static void step_probe_device(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                EmuLogCtx ctx = emulator_log_ctx(e);
                emu_warn(&ctx, "cannot list QEMU's devices (%s); assuming %s is there",
                         error->message, e->qdev_id);
                e->device_added = true;
                e->chardev_added = e->kind->chardev_property != NULL;
                e->probed = true;
                return;
        }
        e->device_added = false;
        size_t i;
        json_t *prop;
        json_array_foreach (ret, i, prop) {
                const char *name = json_string_value(json_object_get(prop, "name"));
                if (name && g_str_equal(name, e->qdev_id))
                        e->device_added = true;
        }
        if (!e->kind->chardev_property) {
                e->probed = true;
                return;
        }
        emulator_vm_execute(e, "query-chardev", NULL, step_probe_chardev);
}

void emulator_probe_device(Emulator *e)
{
        if (e->vm->libvirt) {
                emulator_libvirt_probe(e);
                return;
        }
        emulator_vm_execute(e, "qom-list", json_pack("{s:s}", "path", "/machine/peripheral"),
                            step_probe_device);
}

/* ---- cold-plug: QEMU's command line ------------------------------------- */

/* One -device/-chardev option value: commas doubled, as QEMU's option syntax needs. */
static void append_opt(GString *out, const char *key, const char *value)
{
        if (out->len)
                g_string_append_c(out, ',');
        if (key)
                g_string_append_printf(out, "%s=", key);
        emu_qemu_opt_append(out, value);
}

static char *device_opts(json_t *args)
{
        g_autoptr(GString) out = g_string_new(NULL);
        append_opt(out, NULL, json_string_value(json_object_get(args, "driver")));
        const char *key;
        json_t *v;
        json_object_foreach (args, key, v) {
                if (g_str_equal(key, "driver"))
                        continue;
                g_autofree char *text =
                        json_is_string(v)    ? g_strdup(json_string_value(v))
                        : json_is_boolean(v) ? g_strdup(json_is_true(v) ? "on" : "off")
                        : json_is_integer(v) ? g_strdup_printf("%" JSON_INTEGER_FORMAT,
                                                               json_integer_value(v))
                                             : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                append_opt(out, key, text);
        }
        return g_string_free(g_steal_pointer(&out), FALSE);
}

char **emulator_qemu_args(const Emulator *e)
{
        GPtrArray *argv = g_ptr_array_new();
        g_autoptr(GString) chr = g_string_new(NULL);
        append_opt(chr, NULL, "socket");
        append_opt(chr, "id", e->chardev_id);
        append_opt(chr, "path", e->socket_path);
        /* A QEMU that is not running cannot be asked for its schema: 7.2's spelling. */
        if (e->kind->reconnect)
                append_opt(chr, "reconnect", "1");
        g_ptr_array_add(argv, g_strdup("-chardev"));
        g_ptr_array_add(argv, g_string_free(g_steal_pointer(&chr), FALSE));

        /* Its own root port, so that the device can be unplugged like a hot-plugged one. */
        g_autofree char *port = g_strdup_printf("%s-port", e->qdev_id);
        g_ptr_array_add(argv, g_strdup("-device"));
        g_ptr_array_add(argv, g_strdup_printf("pcie-root-port,id=%s,chassis=%u,slot=0", port,
                                              e->chassis));
        g_autoptr(json_t) args = emulator_device_args(e);
        json_object_set_new(args, "bus", json_string(port));
        g_ptr_array_add(argv, g_strdup("-device"));
        g_ptr_array_add(argv, device_opts(args));
        g_ptr_array_add(argv, NULL);
        return (char **)g_ptr_array_free(argv, FALSE);
}
