/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * adopt: taking over, after an emud restart, the VMs and emulators the
 * state file lists. First the file is read whole (deserialize), then every
 * VM and emulator is registered as it was recorded (coldplug), then each
 * catches up with what is really there: a VM reconnects to its QEMU, an
 * emulator takes over its process (only if its pid still names the process
 * with the recorded start time, so a recycled pid is never touched) and,
 * once its VM answers, asks QEMU for its device. What that shows is
 * settled by the state machine (emulator.c) like any other event.
 * Files in the runtime directory that belong to none of this are removed.
 */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "adopt.h"
#include "confine.h"
#include "emu-id.h"
#include "emu-log.h"
#include "emu-util.h"
#include "libvirt-domains.h"
#include "state.h"

/*
 * An emulator emud cannot take over must not run on unsupervised: stop it,
 * if (and only if) the pid still names that very process.
 */
static void stop_unsupervised(const StateEmulator *se)
{
        EmuLogCtx ctx = { .vm = se->vm, .emulator = se->id, .pid = se->pid };
        EmuProc p;
        emu_proc_init(&p, NULL, NULL);
        if (se->pid > 0 && emu_proc_adopt(&p, se->pid, se->start_time) == 0) {
                emu_warn(&ctx, "stopping its process, which nothing would supervise");
                emu_proc_signal(&p, SIGKILL);
        }
        emu_proc_deinit(&p);
}

static void adopt_vm(Manager *m, const StateVm *v)
{
        if (!emu_id_valid(v->name) || g_hash_table_contains(m->vms, v->name) ||
            (v->qmp ? v->qmp[0] != '/' : !v->defined && !v->libvirt)) {
                emu_warn(NULL, "state file: skipping bad VM entry '%s'", v->name);
                return;
        }
        Vm *vm = manager_new_vm(m, v->name, v->qmp, (const char *const *)v->qmp_extra);
        EmuLogCtx ctx = { .vm = vm->name };
        int r = vm_make_dir(vm, false);
        if (r < 0)
                emu_warn(&ctx, "cannot create %s: %s", vm->dir, g_strerror(-r));
        manager_register_vm(m, vm);
        if (v->libvirt) {
                lv_domains_adopt(m->libvirt, vm);
                return;
        }
        if (v->defined) {
                /* Its prepared emulators settle in their own adoption. */
                vm->state = VM_DEFINED;
                vm_wait_for_qemu(vm);
                return;
        }
        vm_reconnect(vm);
}

static void adopt_emulator(Manager *m, const StateEmulator *se)
{
        EmuLogCtx ctx = { .vm = se->vm, .emulator = se->id };
        Vm *vm = g_hash_table_lookup(m->vms, se->vm);
        EmuKind *kind = g_hash_table_lookup(m->kinds, se->kind);
        EmuRestartPolicy restart;
        g_autoptr(GError) err = NULL;
        EmuPlan *plan = NULL;
        g_autofree char *socket = NULL;
        if (!emu_id_valid(se->id) || !vm || !kind ||
            g_hash_table_contains(m->emulators, se->id) ||
            !emu_restart_from_name(se->restart, &restart) ||
            !(plan = emu_plan_new_at(kind, se->options, socket = emulator_socket_path(vm, se->id, kind),
                                     false, &err))) {
                emu_warn(&ctx, "state file: cannot adopt this emulator (%s)",
                         err ? err->message : "unknown VM, kind or duplicate id");
                stop_unsupervised(se);
                return;
        }
        EmuSeccompMode seccomp = EMU_SECCOMP_ENFORCE;
        if (se->seccomp)
                emu_seccomp_mode_from_name(se->seccomp, &seccomp);
        EmuPolicy *policy = confine_load_policy(m->cfg, kind, &err);
        if (err)
                emu_warn(&ctx, "%s; a restart will fail until the policy is fixed",
                         err->message);
        Emulator *e = emulator_new(m->cfg, m->dispatch, vm, kind, se->id, plan, restart, policy,
                                   seccomp);
        e->cgroup_path = g_strdup(se->cgroup);
        e->slot = g_strdup(se->slot);
        e->restarts = se->restarts;
        manager_register_emulator(m, e);
        emulator_adopt(e, se->state, se->pid, se->start_time);
}

static void remove_stale(Manager *m)
{
        g_autofree char *vmroot = g_build_filename(m->cfg->runtime_dir, "vm", NULL);
        g_autoptr(GDir) d = g_dir_open(vmroot, 0, NULL);
        const char *name;
        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *dir = g_build_filename(vmroot, name, NULL);
                bool known_vm = g_hash_table_contains(m->vms, name);
                g_autoptr(GDir) inner = g_dir_open(dir, 0, NULL);
                const char *f;
                while (inner && (f = g_dir_read_name(inner))) {
                        /* <id>.vu.sock, <id>.qmp.sock; ids have no dots. */
                        g_autofree char *id = g_strdup(f);
                        char *dot = strchr(id, '.');
                        if (dot)
                                *dot = '\0';
                        Emulator *e = g_hash_table_lookup(m->emulators, id);
                        if (known_vm && e && g_str_equal(e->vm->name, name))
                                continue;
                        if (known_vm && g_str_equal(f, "qmp.sock"))
                                continue; /* the proxy binds it again on connect */
                        g_autofree char *path = g_build_filename(dir, f, NULL);
                        emu_warn(NULL, "removing stale %s", path);
                        emu_remove_tree(path);
                }
                if (!known_vm)
                        g_rmdir(dir);
        }
}

void adopt_run(Manager *m, const char *state_path)
{
        g_autoptr(StateSnapshot) s = state_load(state_path);
        for (guint i = 0; i < s->problems->len; i++)
                emu_warn(NULL, "state file: cannot recover %s",
                         (char *)g_ptr_array_index(s->problems, i));
        for (guint i = 0; i < s->vms->len; i++)
                adopt_vm(m, g_ptr_array_index(s->vms, i));
        for (guint i = 0; i < s->emulators->len; i++)
                adopt_emulator(m, g_ptr_array_index(s->emulators, i));
        remove_stale(m);

        /* Catch up: emulators of a VM whose QEMU is already gone settle now. */
        g_autoptr(GPtrArray) all = manager_sorted_emulators(m);
        for (guint i = 0; i < all->len; i++) {
                Emulator *e = g_ptr_array_index(all, i);
                if (e->vm->libvirt)
                        continue; /* below */
                if (e->vm->state == VM_LOST)
                        emulator_vm_lost(e);
                else if (e->vm->state == VM_DEFINED)
                        emulator_vm_ready(e); /* no QEMU to ask: a prepared one settles now */
        }
        /* libvirt domains wait for libvirt's list of what runs, unless there is no libvirt. */
        g_autoptr(GPtrArray) vms = manager_sorted_vms(m);
        for (guint i = 0; i < vms->len; i++) {
                Vm *vm = g_ptr_array_index(vms, i);
                if (vm->libvirt && vm->state == VM_LOST)
                        manager_drop_vm(m, vm, NULL, NULL);
        }
}
