/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emulator-adopt: taking over, after an emud restart, the VMs and emulators
 * the state file lists.
 *
 * Nothing is started twice and nothing unrelated is touched: a process is
 * adopted only if its pid still names the process with the recorded start
 * time. Then QEMU is asked what it has, and each emulator is settled:
 *   - process alive, device in QEMU: plugged (a spawn that emud's death cut
 *     short is thereby finished);
 *   - process gone, device in QEMU, it was plugged: a crash while emud was
 *     away, handled by its restart policy;
 *   - anything else (a half-done spawn, a device QEMU no longer has): rolled
 *     back, the same teardown as a kill.
 * Files in the runtime directory that belong to none of this are removed.
 */
#include <errno.h>
#include <signal.h>
#include <glib/gstdio.h>
#include <string.h>

#include "emu-error.h"
#include "emu-util.h"
#include "emulator-internal.h"
#include "bus-service.h"
#include "confine.h"
#include "emu-id.h"
#include "state.h"

static int listen_fd_number(const EmuKind *k)
{
        for (size_t i = 0; i < k->n_fds; i++)
                if (k->fds[i] == EMU_FD_LISTEN)
                        return 3 + (int)i;
        return -1;
}

static Emulator *adopt_one(Manager *m, Vm *vm, const EmuKind *kind, const StateEmulator *s,
                           EmuPlan *plan, EmuRestartPolicy restart)
{
        EmuSeccompMode seccomp = EMU_SECCOMP_ENFORCE;
        if (s->seccomp)
                emu_seccomp_mode_from_name(s->seccomp, &seccomp);
        g_autoptr(GError) err = NULL;
        EmuPolicy *policy = confine_load_policy(m, kind, &err);
        Emulator *e = emulator_new(m, vm, kind, s->id, plan, restart, policy, seccomp);
        e->cgroup_path = g_strdup(s->cgroup);
        e->state = EMU_STATE_ADOPTING;
        e->adopted_from = g_strdup(s->state);
        e->slot = g_strdup(s->slot);
        e->restarts = s->restarts;
        e->started = true;
        e->slot_search = true;
        EmuLogCtx ctx = emulator_log_ctx(e);

        int r = emu_proc_adopt(&e->proc, s->pid, s->start_time);
        if (r < 0) {
                if (s->pid > 0)
                        emu_warn(&ctx, "pid %d is not this emulator any more (%s); it is left "
                                 "alone",
                                 (int)s->pid, r == -ESRCH ? "gone or reused" : g_strerror(-r));
                return e;
        }
        ctx.pid = e->proc.pid;
        emu_info(&ctx, "adopted the running process (was %s)", s->state);
        if (err)
                emu_warn(&ctx, "%s; a restart will fail until the policy is fixed", err->message);
        if (policy)
                /* Its listener went with the last emud: calls outside the policy now fail
                 * with ENOSYS in the kernel, unreported. */
                emu_info(&ctx, "seccomp: no supervisor for this process until it restarts");

        /* The vhost-user listening socket lives on in the emulator: take a copy back. */
        int n = listen_fd_number(kind);
        int fd = n >= 0 ? emu_proc_get_fd(&e->proc, n) : -ENOENT;
        if (fd >= 0)
                e->listen_fd = fd;
        else
                emu_warn(&ctx, "cannot recover its listening socket (%s); a restart will "
                         "listen on %s anew", g_strerror(-fd), e->socket_path);

        int mon = emulator_connect_unix(e->monitor_path);
        if (mon >= 0)
                emulator_connect_monitor(e, mon);
        else
                emu_warn(&ctx, "cannot reconnect to its QMP monitor %s: %s", e->monitor_path,
                         g_strerror(-mon));
        return e;
}

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

void emulator_probed(Emulator *e)
{
        EmuLogCtx ctx = emulator_log_ctx(e);
        bool alive = emu_proc_alive(&e->proc);
        bool was_plugged = g_strv_contains((const char *const[]){ "plugged", "restarting",
                                                                  "failed", NULL },
                                           e->adopted_from);
        if (alive && e->device_added) {
                if (!was_plugged)
                        emu_info(&ctx, "finishing the spawn an emud restart interrupted");
                emu_info(&ctx, "plugged in VM %s as %s", e->vm->name, e->qdev_id);
                emulator_set_state(e, EMU_STATE_PLUGGED);
                return;
        }
        if (!alive && e->device_added && g_str_equal(e->adopted_from, "failed")) {
                /* Given up before emud restarted: it stays given up. */
                emulator_set_state(e, EMU_STATE_FAILED);
                emulator_set_reason(e, "failed before emud restarted; its device is still in "
                                       "QEMU");
                return;
        }
        if (!alive && e->device_added && was_plugged) {
                emulator_set_state(e, EMU_STATE_PLUGGED);
                EmuExit ex = { .known = false,
                               .text = (char *)"exited while emud was not running" };
                emulator_crashed(e, &ex);
                return;
        }
        emu_info(&ctx, "rolling back (%s, device %s in QEMU)",
                 alive ? "process running" : "process gone",
                 e->device_added ? "still" : "not");
        e->kill_requested = true;
        emulator_set_state(e, EMU_STATE_STOPPING);
        emulator_advance(e);
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
                        g_unlink(path);
                }
                if (!known_vm)
                        g_rmdir(dir);
        }
}

void manager_adopt(Manager *m)
{
        g_autofree char *path = state_path(m);
        g_autoptr(StateSnapshot) s = state_load(path);
        for (guint i = 0; i < s->problems->len; i++)
                emu_warn(NULL, "state file: cannot recover %s",
                         (char *)g_ptr_array_index(s->problems, i));

        for (guint i = 0; i < s->vms->len; i++) {
                const StateVm *v = g_ptr_array_index(s->vms, i);
                if (!emu_id_valid(v->name) || g_hash_table_contains(m->vms, v->name) ||
                    v->qmp[0] != '/') {
                        emu_warn(NULL, "state file: skipping bad VM entry '%s'", v->name);
                        continue;
                }
                manager_adopt_vm(m, v->name, v->qmp, (const char *const *)v->qmp_extra);
        }

        for (guint i = 0; i < s->emulators->len; i++) {
                const StateEmulator *se = g_ptr_array_index(s->emulators, i);
                EmuLogCtx ctx = { .vm = se->vm, .emulator = se->id };
                Vm *vm = g_hash_table_lookup(m->vms, se->vm);
                const EmuKind *kind = g_hash_table_lookup(m->kinds, se->kind);
                EmuRestartPolicy restart;
                g_autoptr(GError) err = NULL;
                EmuPlan *plan = NULL;
                if (!emu_id_valid(se->id) || !vm || !kind ||
                    g_hash_table_contains(m->emulators, se->id) ||
                    !manager_parse_restart(se->restart, &restart) ||
                    !(plan = emu_plan_new_unchecked(kind, se->options, &err))) {
                        emu_warn(&ctx, "state file: cannot adopt this emulator (%s)",
                                 err ? err->message : "unknown VM, kind or duplicate id");
                        stop_unsupervised(se);
                        continue;
                }
                Emulator *e = adopt_one(m, vm, kind, se, plan, restart);
                bus_emulator_add(m, e);
        }
        remove_stale(m);

        /* VMs whose QEMU is already gone take their emulators down with them. */
        GHashTableIter it;
        Vm *vm;
        g_hash_table_iter_init(&it, m->vms);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&vm))
                if (vm->state == VM_LOST)
                        manager_vm_lost_emulators(vm);
        state_save(m);
}
