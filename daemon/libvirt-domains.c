/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libvirt-domains: libvirt's domains as emud's VMs.
 *
 * Two sources say what a domain does, and both lead to the same calls:
 *   - the hook (hooks/emud-libvirt-hook.c, through D-Bus): "prepare"
 *     starts the emulators the domain's <metadata> declares, before QEMU
 *     exists; "start" gives QEMU's uid its sockets; "started", "stopped"
 *     and "release" say that QEMU runs or is gone;
 *   - libvirt's events, on emud's own connection: a domain started or
 *     stopped, a device was removed, the metadata changed; and, after each
 *     (re)connect, the list of running domains, which covers whatever
 *     happened while emud or libvirtd was away.
 *
 * A running domain is a VM in the connected state whose QEMU emud reaches
 * only through libvirt (emulator-libvirt.c); every running domain is one,
 * so that emuctl spawn works on any of them. Each time a domain is seen
 * running, the emulators it declares and emud lacks are started: their
 * devices are in QEMU already (QEMU reconnects), or libvirt attaches them.
 */
#include "emu-error.h"
#include "emu-id.h"
#include "emu-log.h"
#include "libvirt-conn.h"
#include "libvirt-domains.h"

/* prepare, after a stop whose emulators are still stopping (their SIGTERM grace). */
#define REMOVAL_POLL_MS 50
#define REMOVAL_WAIT_MS 30000

struct LvDomains {
        Manager *m;
        LvConn *conn;
        char *last_problem;     /* the last connection problem logged */
        GHashTable *ended;      /* domain name → libvirt's id of its run that ended */
        bool listed;            /* the first list after emud started has been seen */
};

static Vm *domain_vm(LvDomains *d, const char *name)
{
        Vm *vm = g_hash_table_lookup(d->m->vms, name);
        return vm && vm->libvirt ? vm : NULL;
}

static Vm *new_domain_vm(LvDomains *d, const char *name, VmState state, GError **error)
{
        Vm *vm = manager_new_vm(d->m, name, NULL, NULL);
        vm->libvirt = true;
        vm->lv = d->conn;
        vm->state = state;
        int r = vm_make_dir(vm, true);
        if (r < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED, "cannot create %s: %s",
                            vm->dir, g_strerror(-r));
                vm_free(vm);
                return NULL;
        }
        manager_register_vm(d->m, vm);
        return vm;
}

/* The domain's XML as libvirt now gives it: QEMU's uid may use the sockets from here on. */
static void set_domain(LvDomains *d, Vm *vm, DomainXml *xml)
{
        domain_xml_free(vm->domain);
        vm->domain = xml;
        g_autoptr(GPtrArray) list = manager_vm_emulators(d->m, vm);
        for (guint i = 0; i < list->len; i++)
                emulator_libvirt_grant(g_ptr_array_index(list, i));
}

/* What libvirt says the domain does now; its emulators learn it (an adoption settles). */
static void settle_vm(Vm *vm, VmState state, const char *what)
{
        EmuLogCtx ctx = { .vm = vm->name };
        emu_info(&ctx, "%s", what);
        vm->state = state;
        vm->adopting = false;
        dispatch_mark(vm->dispatch, vm, VM_DIRTY_STATE);
        vm->ops->ready(vm, vm->ops_userdata);
}

/* The manager takes emud's own keys (restart, seccomp) out of what it is given. */
static GHashTable *copy_options(GHashTable *options)
{
        GHashTable *out = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, options);
        while (g_hash_table_iter_next(&it, &k, &v))
                g_hash_table_insert(out, g_strdup(k), g_strdup(v));
        return out;
}

static void log_result(void *userdata, const GError *error)
{
        g_autofree char *id = userdata;
        if (error)
                emu_warn(NULL, "emulator %s declared in libvirt metadata: %s", id,
                         error->message);
}

/* Start, for a running domain, each declared emulator that emud does not have. */
static void start_missing(LvDomains *d, Vm *vm)
{
        for (guint i = 0; i < vm->domain->emulators->len; i++) {
                const DomainEmulator *de = g_ptr_array_index(vm->domain->emulators, i);
                Emulator *e = g_hash_table_lookup(d->m->emulators, de->id);
                if (e)
                        continue;
                EmuLogCtx ctx = { .vm = vm->name, .emulator = de->id };
                emu_info(&ctx, "declared in the domain's metadata but not running: starting it");
                g_autoptr(GHashTable) options = copy_options(de->options);
                manager_prepare(d->m, vm->name, NULL, de->kind, de->id, options, log_result,
                                g_strdup(de->id));
        }
}

/* The domain runs, with this XML (taken over): emud follows it as a connected VM. */
static void domain_running(LvDomains *d, DomainXml *xml)
{
        g_autoptr(DomainXml) parsed = xml;
        g_autoptr(GError) err = NULL;
        const char *name = parsed->name;
        EmuLogCtx ctx = { .vm = name };
        Vm *vm = g_hash_table_lookup(d->m->vms, name);
        if (vm && !vm->libvirt) {
                emu_warn(&ctx, "libvirt runs a domain of this name, but the VM added as %s is "
                               "another QEMU; emud does not follow the domain",
                         vm->qmp_path ? vm->qmp_path : "defined");
                return;
        }
        /* XML fetched for an event and delivered after the domain stopped again: stale. */
        if (parsed->run_id < 0 ||
            GPOINTER_TO_INT(g_hash_table_lookup(d->ended, name)) == parsed->run_id + 1)
                return;
        if (vm && vm->remove_done)
                return; /* on its way out; a later event or list brings it back */
        if (!vm && !emu_id_valid(name)) {
                if (parsed->declared)
                        emu_warn(&ctx, "libvirt domain name is not a valid VM name (%s); its "
                                       "emud metadata is ignored",
                                 EMU_ID_RULE);
                return;
        }
        if (!vm && !(vm = new_domain_vm(d, name, VM_CONNECTED, &err))) {
                emu_warn(&ctx, "%s", err->message);
                return;
        }
        set_domain(d, vm, g_steal_pointer(&parsed));
        if (vm->state != VM_CONNECTED)
                settle_vm(vm, VM_CONNECTED, "libvirt domain is running");
        start_missing(d, vm);
}

/* The same for XML that libvirt's reports carry (a list, an event). */
static void domain_running_xml(LvDomains *d, const char *name, const char *xml)
{
        g_autoptr(GError) err = NULL;
        DomainXml *parsed = domain_xml_parse(xml, &err);
        if (parsed) {
                domain_running(d, parsed);
                return;
        }
        EmuLogCtx ctx = { .vm = name };
        emu_warn(&ctx, "libvirt domain: %s", err->message);
}

static void domain_gone(LvDomains *d, Vm *vm, const char *why)
{
        if (vm->remove_done)
                return;
        if (vm->domain && vm->domain->run_id >= 0) /* stored +1: 0 is "none" in the table */
                g_hash_table_insert(d->ended, g_strdup(vm->name),
                                    GINT_TO_POINTER(vm->domain->run_id + 1));
        EmuLogCtx ctx = { .vm = vm->name };
        emu_info(&ctx, "libvirt domain %s; stopping its emulators", why);
        manager_drop_vm(d->m, vm, NULL, NULL);
}

/* ---- libvirt's word ----------------------------------------------------- */

static void on_connected(void *userdata)
{
        LvDomains *d = userdata;
        emu_info(NULL, "connected to libvirt at %s", lv_conn_uri(d->conn));
        g_clear_pointer(&d->last_problem, g_free);
}

static void on_disconnected(void *userdata, const char *why)
{
        LvDomains *d = userdata;
        if (g_strcmp0(d->last_problem, why) == 0)
                return; /* said once; the retries are quiet */
        emu_warn(NULL, "libvirt at %s: %s; trying again every second", lv_conn_uri(d->conn),
                 why);
        g_free(d->last_problem);
        d->last_problem = g_strdup(why);
}

static void on_domains(void *userdata, char **names, char **xmls, char **starting)
{
        LvDomains *d = userdata;
        bool first = !d->listed;
        d->listed = true;
        g_autoptr(GPtrArray) vms = manager_sorted_vms(d->m);
        for (guint i = 0; i < vms->len; i++) {
                Vm *vm = g_ptr_array_index(vms, i);
                if (!vm->libvirt || g_strv_contains((const char *const *)names, vm->name))
                        continue;
                if (g_strv_contains((const char *const *)starting, vm->name)) {
                        /* Between its prepare hook and QEMU's start: its prepared
                         * emulators (adopted, after an emud restart) wait for it. */
                        if (vm->state == VM_CONNECTING && !vm->remove_done)
                                settle_vm(vm, VM_DEFINED, "libvirt is still starting the domain");
                        continue;
                }
                /*
                 * Neither running nor starting. A defined VM may come from a
                 * prepare hook answered after libvirt made this list; only right
                 * after emud's own start is one surely stale (its release came
                 * while emud was away).
                 */
                if (vm->state != VM_DEFINED || first)
                        domain_gone(d, vm, "is not running (it stopped while emud or "
                                           "libvirtd was away)");
        }
        for (size_t i = 0; names[i]; i++)
                domain_running_xml(d, names[i], xmls[i]);
}

static void on_domain_xml(void *userdata, const char *name, const char *xml, bool started)
{
        domain_running_xml(userdata, name, xml);
}

static void on_domain_stopped(void *userdata, const char *name, const char *why)
{
        LvDomains *d = userdata;
        Vm *vm = domain_vm(d, name);
        if (vm)
                domain_gone(d, vm, why);
}

static void on_device_removed(void *userdata, const char *name, const char *alias)
{
        LvDomains *d = userdata;
        Vm *vm = domain_vm(d, name);
        if (vm)
                vm->ops->device_deleted(vm, alias, vm->ops_userdata);
}

static const LvConnOps conn_ops = {
        .connected = on_connected,
        .disconnected = on_disconnected,
        .domains = on_domains,
        .domain_xml = on_domain_xml,
        .domain_stopped = on_domain_stopped,
        .device_removed = on_device_removed,
};

/* ---- the hook's word ---------------------------------------------------- */

typedef struct {
        LvDomains *d;
        char *name;             /* the domain's */
        DomainXml *xml;         /* until prepare_start() hands it to the VM */
        guint pending;          /* emulators not yet answered, +1 while they are started */
        guint polls;            /* waiting for the last run's VM to go */
        GError *error;
        DoneFunc done;
        void *userdata;
} PrepareOp;

static void prepare_answer(PrepareOp *op)
{
        dispatch_done(op->d->m->dispatch, op->done, op->userdata, op->error);
        g_clear_error(&op->error);
        domain_xml_free(op->xml);
        g_free(op->name);
        g_free(op);
}

static void prepare_fail(PrepareOp *op, GError *error)
{
        if (!op->error)
                op->error = error;
        else
                g_error_free(error);
}

static void on_rolled_back(void *userdata, const GError *error)
{
        prepare_answer(userdata);
}

static void on_prepared(void *userdata, const GError *error)
{
        PrepareOp *op = userdata;
        if (error)
                prepare_fail(op, g_error_copy(error));
        if (--op->pending)
                return;
        Vm *vm = op->error ? domain_vm(op->d, op->name) : NULL;
        if (vm && !vm->remove_done) {
                /* Nothing of a failed start stays behind. */
                manager_drop_vm(op->d->m, vm, on_rolled_back, op);
                return;
        }
        prepare_answer(op);
}

/* The device libvirt will give QEMU must be on the emulator's socket. */
static void check_device(PrepareOp *op, Emulator *e)
{
        const DomainDevice *dev = domain_xml_find_device(op->xml, e->socket_path);
        GError *err = NULL;
        if (!dev) {
                g_autofree char *target = domain_xml_free_disk_target(op->xml);
                g_autofree char *snippet = emulator_libvirt_device_xml(e, NULL, target);
                err = g_error_new(EMU_ERROR, EMU_ERROR_BAD_PATH,
                                  "emulator %s: the domain has no device on its socket; add "
                                  "to <devices>: %s",
                                  e->id, snippet);
        } else if (e->restart != EMU_RESTART_NO && !dev->reconnect) {
                err = g_error_new(EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                                  "emulator %s: its <%s> needs <reconnect enabled='yes' "
                                  "timeout='1'/> in <source>, so that QEMU takes a restarted "
                                  "emulator (or give it the option restart=no)",
                                  e->id, dev->element);
        }
        if (!err)
                return;
        prepare_fail(op, err);
        emulator_kill(e, true, NULL, NULL);
}

static void prepare_start(PrepareOp *op)
{
        LvDomains *d = op->d;
        GError *err = NULL;
        Vm *vm = new_domain_vm(d, op->name, VM_DEFINED, &err);
        if (!vm) {
                op->error = err;
                prepare_answer(op);
                return;
        }
        EmuLogCtx ctx = { .vm = vm->name };
        emu_info(&ctx, "libvirt is starting the domain: preparing %u emulators",
                 op->xml->emulators->len);
        op->pending = op->xml->emulators->len + 1;
        for (guint i = 0; i < op->xml->emulators->len; i++) {
                const DomainEmulator *de = g_ptr_array_index(op->xml->emulators, i);
                g_autoptr(GHashTable) options = copy_options(de->options);
                manager_prepare(d->m, vm->name, NULL, de->kind, de->id, options, on_prepared,
                                op);
                Emulator *e = g_hash_table_lookup(d->m->emulators, de->id);
                if (e && e->vm == vm)
                        check_device(op, e);
        }
        /* Its run id tells a late report of this run from the next one (domain_gone()). */
        set_domain(d, vm, g_steal_pointer(&op->xml));
        on_prepared(op, NULL); /* the +1: every emulator is on its way */
}

static void on_stale_dropped(void *userdata, const GError *error)
{
        PrepareOp *op = userdata;
        if (error) {
                op->error = g_error_copy(error);
                prepare_answer(op);
                return;
        }
        prepare_start(op);
}

/* The domain's last run is still being taken down (a destroy just before): wait for it. */
static gboolean on_removal_poll(gpointer userdata)
{
        PrepareOp *op = userdata;
        Vm *vm = g_hash_table_lookup(op->d->m->vms, op->name);
        if (vm && ++op->polls < REMOVAL_WAIT_MS / REMOVAL_POLL_MS)
                return G_SOURCE_CONTINUE;
        if (vm) {
                op->error = g_error_new(EMU_ERROR, EMU_ERROR_BUSY,
                                        "the emulators of the domain's last run are still "
                                        "stopping after %u s",
                                        REMOVAL_WAIT_MS / 1000);
                prepare_answer(op);
        } else {
                prepare_start(op);
        }
        return G_SOURCE_REMOVE;
}

static void hook_prepare(LvDomains *d, DomainXml *xml, DoneFunc done, void *userdata)
{
        PrepareOp *op = g_new0(PrepareOp, 1);
        op->d = d;
        op->name = g_strdup(xml->name);
        op->xml = xml;
        op->done = done;
        op->userdata = userdata;
        if (!emu_id_valid(xml->name)) {
                op->error = g_error_new(EMU_ERROR, EMU_ERROR_INVALID_ID,
                                        "domain name '%s' cannot name an emud VM: use %s",
                                        xml->name, EMU_ID_RULE);
                prepare_answer(op);
                return;
        }
        Vm *vm = g_hash_table_lookup(d->m->vms, xml->name);
        if (vm && !vm->libvirt) {
                op->error = g_error_new(EMU_ERROR, EMU_ERROR_EXISTS,
                                        "emud already has a VM named %s that is not this "
                                        "domain (added with QMP socket %s)",
                                        xml->name, vm->qmp_path ? vm->qmp_path : "none");
                prepare_answer(op);
                return;
        }
        if (vm && vm->remove_done) {
                g_timeout_add(REMOVAL_POLL_MS, on_removal_poll, op);
                return;
        }
        if (vm) {
                /* libvirt is starting it, so what emud has of it is stale. */
                manager_drop_vm(d->m, vm, on_stale_dropped, op);
                return;
        }
        prepare_start(op);
}

void lv_domains_hook(LvDomains *d, const char *op, const char *subop, const char *xml,
                     DoneFunc done, void *userdata)
{
        Manager *m = d->m;
        g_autoptr(GError) err = NULL;
        g_autoptr(DomainXml) parsed = domain_xml_parse(xml, &err);
        if (!parsed) {
                dispatch_done(m->dispatch, done, userdata, err);
                return;
        }
        EmuLogCtx ctx = { .vm = parsed->name };
        emu_debug(&ctx, "libvirt hook: %s %s", op, subop);
        Vm *vm = domain_vm(d, parsed->name);
        if (g_str_equal(op, "prepare") && parsed->declared) {
                hook_prepare(d, g_steal_pointer(&parsed), done, userdata);
                return;
        }
        if (g_str_equal(op, "start") && vm && !vm->remove_done) {
                set_domain(d, vm, g_steal_pointer(&parsed)); /* with QEMU's uid, now */
        } else if (g_str_equal(op, "started")) {
                domain_running(d, g_steal_pointer(&parsed));
        } else if ((g_str_equal(op, "stopped") || g_str_equal(op, "release")) && vm) {
                domain_gone(d, vm, g_str_equal(op, "stopped") ? "stopped" : "released");
        }
        dispatch_done(m->dispatch, done, userdata, NULL);
}

void lv_domains_adopt(LvDomains *d, Vm *vm)
{
        vm->libvirt = true;
        vm->lv = d ? d->conn : NULL;
        /* Settled by the first list of running domains, or lost without libvirt. */
        vm->state = d ? VM_CONNECTING : VM_LOST;
        vm->adopting = d != NULL;
}

LvDomains *lv_domains_new(Manager *m, const char *uri)
{
        LvDomains *d = g_new0(LvDomains, 1);
        d->m = m;
        d->ended = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        d->conn = lv_conn_new(uri, &conn_ops, d);
        if (!d->conn) {
                g_hash_table_unref(d->ended);
                g_free(d);
                return NULL;
        }
        m->libvirt = d;
        return d;
}

void lv_domains_free(LvDomains *d)
{
        if (!d)
                return;
        d->m->libvirt = NULL;
        lv_conn_free(d->conn);
        g_hash_table_unref(d->ended);
        g_free(d->last_problem);
        g_free(d);
}
