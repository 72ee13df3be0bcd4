/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emulator: the state machine of one emulator process and its device in QEMU.
 *
 * Events arrive in any order (the process may die while chardev-add is in
 * flight, the guest may release the device while emud waits for something
 * else), so the code does not chain callbacks. Each event records facts
 * about the emulator and calls emulator_advance(), the one place that looks
 * at those facts and takes the next step: forwards towards "plugged" while
 * all is well, and backwards (device_del, chardev-remove, SIGTERM, SIGKILL,
 * reap, unlink) once a failure or a kill request is recorded. Only one QMP
 * command for the emulator is in flight at a time.
 *
 * A plugged emulator whose process dies is restarted according to its
 * policy, with exponential backoff and a crash-loop limit. emud holds the
 * vhost-user listening socket, so the new process serves the same socket
 * and QEMU's chardev reattaches by itself without a new hot-plug.
 *
 * Nothing here calls an observer or frees the emulator: changes, answers
 * and the final "collect me" go through the Dispatch (dispatch.h).
 */
#include <glib/gstdio.h>
#include <signal.h>

#include "emu-error.h"
#include "emu-util.h"
#include "emulator-internal.h"

const char *emu_state_name(EmuState s)
{
        static const char *const names[] = {
                [EMU_STATE_STARTING] = "starting",     [EMU_STATE_RUNNING] = "running",
                [EMU_STATE_PLUGGING] = "plugging",     [EMU_STATE_PLUGGED] = "plugged",
                [EMU_STATE_PREPARED] = "prepared",
                [EMU_STATE_RESTARTING] = "restarting", [EMU_STATE_ADOPTING] = "adopting",
                [EMU_STATE_UNPLUGGING] = "unplugging", [EMU_STATE_STOPPING] = "stopping",
                [EMU_STATE_FAILED] = "failed",         [EMU_STATE_GONE] = "gone",
        };
        return s < G_N_ELEMENTS(names) ? names[s] : "?";
}

static const char *const restart_names[] = {
        [EMU_RESTART_NO] = "no",
        [EMU_RESTART_ON_FAILURE] = "on-failure",
        [EMU_RESTART_ALWAYS] = "always",
};

const char *emu_restart_name(EmuRestartPolicy r)
{
        return r < G_N_ELEMENTS(restart_names) ? restart_names[r] : "?";
}

bool emu_restart_from_name(const char *text, EmuRestartPolicy *ret)
{
        for (size_t i = 0; text && i < G_N_ELEMENTS(restart_names); i++) {
                if (g_str_equal(text, restart_names[i])) {
                        *ret = (EmuRestartPolicy)i;
                        return true;
                }
        }
        return false;
}

EmuLogCtx emulator_log_ctx(const Emulator *e)
{
        return (EmuLogCtx){ .vm = e->vm->name, .emulator = e->id, .kind = e->kind->name,
                            .pid = e->proc.pid };
}

void emulator_mark(Emulator *e, unsigned mask)
{
        dispatch_mark(e->dispatch, e, mask);
}

void emulator_set_state(Emulator *e, EmuState state)
{
        if (e->state == state)
                return;
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_debug(&ctx, "%s -> %s", emu_state_name(e->state), emu_state_name(state));
        e->state = state;
        emulator_mark(e, EMU_DIRTY_STATE);
}

void emulator_set_reason(Emulator *e, const char *reason)
{
        g_free(e->reason);
        e->reason = g_strdup(reason);
        emulator_mark(e, EMU_DIRTY_PROPS);
}

void emulator_clear_timer(Emulator *e)
{
        if (e->timer) {
                g_source_remove(e->timer);
                e->timer = 0;
        }
}

void emulator_set_timer(Emulator *e, guint ms, GSourceFunc fn)
{
        emulator_clear_timer(e);
        e->timer = g_timeout_add(ms, fn, e);
}

/* Record the first failure of a spawn; teardown follows in emulator_advance(). */
void emulator_fail(Emulator *e, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_warn(&ctx, "%s", msg);
        if (!e->failure)
                e->failure = g_error_new_literal(EMU_ERROR, code, msg);
        emulator_set_reason(e, msg);
}

bool emulator_vm_usable(const Emulator *e)
{
        return e->vm->state == VM_CONNECTED && (e->vm->qmp || e->vm->libvirt);
}

/* Spawn (or Prepare) succeeded: its requester hears so in the dispatch pass. */
static void answer_spawn(Emulator *e)
{
        DoneFunc done = g_steal_pointer(&e->spawn_done);
        dispatch_done(e->dispatch, done, e->spawn_userdata, NULL);
}

static void answer_kill(Emulator *e, const GError *error)
{
        DoneFunc done = g_steal_pointer(&e->kill_done);
        dispatch_done(e->dispatch, done, e->kill_userdata, error);
}

/* A kill that cannot complete: the emulator stays as it is and Kill gets the error. */
static void abandon_kill(Emulator *e, int code, const char *msg)
{
        e->kill_requested = false;
        emulator_set_state(e, emu_proc_alive(&e->proc) ? EMU_STATE_PLUGGED : EMU_STATE_FAILED);
        g_autoptr(GError) err = g_error_new_literal(EMU_ERROR, code, msg);
        answer_kill(e, err);
}

/* ---- restarts ----------------------------------------------------------- */

static void give_up(Emulator *e, const char *msg)
{
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_warn(&ctx, "%s", msg);
        emulator_clear_timer(e);
        /* The state first, so that nobody sees the reason with a stale state. */
        emulator_set_state(e, EMU_STATE_FAILED);
        emulator_set_reason(e, msg);
        if (e->cfg->give_up_unplug) {
                emu_info(&ctx, "unplugging its device (give-up-action=unplug)");
                e->kill_requested = true;
        }
}

static gboolean on_restart_timer(gpointer userdata)
{
        Emulator *e = userdata;
        e->timer = 0;
        e->restart_due = true;
        emulator_advance(e);
        return G_SOURCE_REMOVE;
}

/* Another attempt after a backoff, unless the crash-loop limit is reached. */
static void schedule_restart(Emulator *e, const char *msg)
{
        const EmudConfig *cfg = e->cfg;
        EmuLogCtx ctx = emulator_log_ctx(e);

        /* Forget attempts older than the crash-loop window. */
        gint64 horizon = g_get_monotonic_time() - (gint64)cfg->restart_limit_interval_ms * 1000;
        guint keep = 0;
        for (guint i = 0; i < e->restart_times->len; i++) {
                gint64 t = g_array_index(e->restart_times, gint64, i);
                if (t >= horizon)
                        g_array_index(e->restart_times, gint64, keep++) = t;
        }
        g_array_set_size(e->restart_times, keep);
        if (keep >= cfg->restart_limit_burst) {
                g_autofree char *why = g_strdup_printf(
                        "crash loop: %u restarts within %u ms, giving up; last: %s", keep,
                        cfg->restart_limit_interval_ms, msg);
                give_up(e, why);
                return;
        }

        guint64 delay = cfg->restart_backoff_start_ms;
        for (guint i = 0; i < keep && delay < cfg->restart_backoff_cap_ms; i++)
                delay *= 2;
        delay = MIN(delay, cfg->restart_backoff_cap_ms);
        emu_info(&ctx, "restarting in %" G_GUINT64_FORMAT " ms (attempt %u of %u in the window)",
                 delay, keep + 1, cfg->restart_limit_burst);
        emulator_set_state(e, EMU_STATE_RESTARTING);
        emulator_set_reason(e, msg);
        emulator_set_timer(e, (guint)delay, on_restart_timer);
}

static void restart_now(Emulator *e)
{
        e->restart_due = false;
        gint64 now = g_get_monotonic_time();
        g_array_append_val(e->restart_times, now);
        g_autoptr(GError) err = NULL;
        if (!emulator_launch(e, &err)) {
                /* Counts as an attempt like a crash: the cause (an image being replaced,
                 * say) may pass, and the crash-loop limit bounds the retries. */
                g_autofree char *msg = g_strdup_printf("restart failed: %s", err->message);
                EmuLogCtx ctx = emulator_log_ctx(e);
                emu_warn(&ctx, "%s", msg);
                schedule_restart(e, msg);
        }
}

static bool wants_restart(const Emulator *e, const EmuExit *ex)
{
        switch (e->restart) {
        case EMU_RESTART_ALWAYS:
                return true;
        case EMU_RESTART_ON_FAILURE:
                /* A clean exit 0 is not a failure; an unknown status counts as one. */
                return !(ex->known && ex->signal == 0 && ex->code == 0);
        case EMU_RESTART_NO:
                break;
        }
        return false;
}

static void crashed(Emulator *e)
{
        g_autofree char *msg = emulator_exit_message(e, &e->last_exit);
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_warn(&ctx, "%s", msg);
        if (e->seccomp_killed) {
                /* Stopped for a policy violation: a restart would only repeat it. */
                emulator_set_state(e, EMU_STATE_FAILED);
                emulator_set_reason(e, e->seccomp_report);
                return;
        }
        if (!wants_restart(e, &e->last_exit)) {
                emulator_set_state(e, EMU_STATE_FAILED);
                emulator_set_reason(e, msg);
                return;
        }
        schedule_restart(e, msg);
}

/* The process exited: what that means depends on what the emulator was doing. */
static void handle_exit(Emulator *e)
{
        e->exit_pending = false;
        EmuLogCtx ctx = emulator_log_ctx(e);
        switch (e->state) {
        case EMU_STATE_STOPPING:
                emu_info(&ctx, "%s", e->last_exit.text);
                return;
        case EMU_STATE_PLUGGED:
        case EMU_STATE_PREPARED:
        case EMU_STATE_RESTARTING:
                if (!e->kill_requested) {
                        crashed(e);
                        return;
                }
                G_GNUC_FALLTHROUGH;
        case EMU_STATE_UNPLUGGING:
        case EMU_STATE_FAILED:
        case EMU_STATE_ADOPTING: {
                g_autofree char *msg = emulator_exit_message(e, &e->last_exit);
                emu_warn(&ctx, "%s", msg);
                emulator_set_reason(e, msg);
                return;
        }
        default: {
                g_autofree char *msg = e->seccomp_killed
                                               ? g_strdup(e->seccomp_report)
                                               : emulator_exit_message(e, &e->last_exit);
                emulator_fail(e, EMU_ERROR_SPAWN_FAILED, "%s", msg);
                return;
        }
        }
}

/* ---- adoption ----------------------------------------------------------- */

/*
 * What QEMU said, with whether the process lives, settles an adopted emulator:
 *   - process alive, device in QEMU: plugged (a spawn that emud's death cut
 *     short is thereby finished);
 *   - process gone, device in QEMU, it had been given up: it stays failed;
 *   - process gone, device in QEMU, it was plugged: a crash while emud was
 *     away, handled by its restart policy;
 *   - anything else (a half-done spawn, a device QEMU no longer has): rolled
 *     back, the same teardown as a kill.
 */
static void settle_adopted(Emulator *e)
{
        EmuLogCtx ctx = emulator_log_ctx(e);
        bool alive = emu_proc_alive(&e->proc);
        bool was_plugged = g_strv_contains((const char *const[]){ "plugged", "restarting",
                                                                  "failed", NULL },
                                           e->adopted_from);
        if (alive && e->cold && !e->device_added) {
                /* Prepared, and QEMU started without it while emud was away. */
                emulator_set_state(e, EMU_STATE_PREPARED);
                return;
        }
        if (alive && e->device_added) {
                e->cold = false;
                if (!was_plugged)
                        emu_info(&ctx, "finishing the spawn an emud restart interrupted");
                emu_info(&ctx, "plugged in VM %s as %s", e->vm->name, e->qdev_id);
                emulator_set_state(e, EMU_STATE_PLUGGED);
                return;
        }
        if (!alive && e->device_added && g_str_equal(e->adopted_from, "failed")) {
                emulator_set_state(e, EMU_STATE_FAILED);
                emulator_set_reason(e, "failed before emud restarted; its device is still in "
                                       "QEMU");
                return;
        }
        if (!alive && e->device_added && was_plugged) {
                emulator_set_state(e, EMU_STATE_PLUGGED);
                emu_exit_clear(&e->last_exit);
                e->last_exit.text = g_strdup("exited while emud was not running");
                crashed(e);
                return;
        }
        emu_info(&ctx, "rolling back (%s, device %s in QEMU)",
                 alive ? "process running" : "process gone", e->device_added ? "still" : "not");
        e->kill_requested = true;
        emulator_set_state(e, EMU_STATE_STOPPING);
}

/* ---- cold-plug ---------------------------------------------------------- */

/*
 * A prepared emulator: launched without a QEMU to plug into, then found in
 * QEMU once it answers. Returns true when the hot-plug path takes over (QEMU
 * started without it), false while this path still has something to do.
 */
static bool advance_cold(Emulator *e)
{
        EmuLogCtx ctx = emulator_log_ctx(e);
        if (!e->started) {
                g_autoptr(GError) err = NULL;
                e->started = true;
                if (!emulator_launch(e, &err)) {
                        emulator_fail(e, err->code, "%s", err->message);
                        emulator_advance(e);
                        return false;
                }
                /* Readiness "exec": ready already, and nothing else will call back. */
        }
        if (!e->ready)
                return false;
        if (!emulator_vm_usable(e)) {
                if (e->state == EMU_STATE_PREPARED)
                        return false;
                emulator_clear_timer(e);
                emu_info(&ctx, "ready; waiting for VM %s's QEMU to start with it", e->vm->name);
                emulator_set_state(e, EMU_STATE_PREPARED);
                answer_spawn(e);
                return false;
        }
        if (!e->probed) {
                emulator_probe_device(e);
                return false;
        }
        e->cold = false;
        if (e->device_added) {
                emu_info(&ctx, "QEMU started with it: plugged into VM %s as %s", e->vm->name,
                         e->qdev_id);
                emulator_set_reason(e, NULL);
                emulator_set_state(e, EMU_STATE_PLUGGED);
                answer_spawn(e);
                return false;
        }
        if (!e->kind->hotplug) {
                emulator_fail(e, EMU_ERROR_HOTPLUG_FAILED,
                              "QEMU of VM %s started without device %s, and kind %s cannot be "
                              "hot-plugged: start QEMU with the arguments of emuctl prepare",
                              e->vm->name, e->qdev_id, e->kind->name);
                emulator_advance(e);
                return false;
        }
        emu_info(&ctx, "QEMU of VM %s started without device %s; hot-plugging it",
                 e->vm->name, e->qdev_id);
        if (e->vm->libvirt && e->restart != EMU_RESTART_NO) {
                /* libvirt gives a hot-plugged device no reconnect: a new process is no use. */
                emu_warn(&ctx, "restart=%s becomes no: libvirt hot-plugs without reconnect",
                         emu_restart_name(e->restart));
                e->restart = EMU_RESTART_NO;
                emulator_mark(e, EMU_DIRTY_PROPS);
        }
        g_clear_pointer(&e->slot, g_free); /* its own root port is not in this QEMU */
        emulator_set_state(e, EMU_STATE_RUNNING);
        return true;
}

/* A prepared emulator whose QEMU has not started: it waits on, or restarts. */
static void settle_prepared(Emulator *e)
{
        emulator_set_state(e, EMU_STATE_PREPARED);
        if (!emu_proc_alive(&e->proc)) {
                emu_exit_clear(&e->last_exit);
                e->last_exit.text = g_strdup("exited while emud was not running");
                crashed(e);
        }
}

/* ---- teardown ----------------------------------------------------------- */

static gboolean on_stop_grace(gpointer userdata)
{
        Emulator *e = userdata;
        e->timer = 0;
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_warn(&ctx, "still running %u ms after SIGTERM; sending SIGKILL",
                 e->cfg->stop_grace_ms);
        emu_proc_signal(&e->proc, SIGKILL);
        return G_SOURCE_REMOVE;
}

/* Everything undone: answer who asked, and ask to be collected. */
static void finalize(Emulator *e)
{
        emulator_clear_timer(e);
        e->listen_fd = emu_close(e->listen_fd);
        e->remote_fd = emu_close(e->remote_fd);
        emulator_drop_monitor(e);
        if (e->started) {
                g_unlink(e->socket_path);
                g_unlink(e->monitor_path);
                if (e->kind->emulator_listens) {
                        g_autofree char *dir = g_path_get_dirname(e->socket_path);
                        g_rmdir(dir);
                }
        }
        emulator_release_slot(e);
        emulator_set_state(e, EMU_STATE_GONE);
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_info(&ctx, "gone");

        if (e->spawn_done) {
                g_autoptr(GError) failure = g_steal_pointer(&e->failure);
                if (!failure)
                        failure = g_error_new(EMU_ERROR, EMU_ERROR_SPAWN_FAILED,
                                              "emulator %s was killed before it was plugged",
                                              e->id);
                DoneFunc done = g_steal_pointer(&e->spawn_done);
                dispatch_done(e->dispatch, done, e->spawn_userdata, failure);
        }
        answer_kill(e, NULL);
        dispatch_collect(e->dispatch, e);
}

static void teardown(Emulator *e)
{
        if (e->device_added && emulator_vm_usable(e)) {
                if (e->unplug_waiting)
                        return;
                emulator_set_state(e, EMU_STATE_UNPLUGGING);
                emulator_del_device(e);
                return;
        }
        if (e->chardev_added && emulator_vm_usable(e)) {
                emulator_remove_chardev(e);
                return;
        }
        if (e->fd_sent && emulator_vm_usable(e)) {
                emulator_close_fd(e);
                return;
        }
        if (emu_proc_alive(&e->proc)) {
                if (!e->term_sent) {
                        /*
                         * A confined emulator is PID 1 of its PID namespace, which
                         * ignores SIGTERM until the program installs a handler: one
                         * not yet ready may still be before that, and it serves
                         * nothing yet, so it gets SIGKILL rather than the grace.
                         */
                        bool early = !e->ready && e->sandbox;
                        emulator_set_state(e, EMU_STATE_STOPPING);
                        emu_proc_signal(&e->proc, early ? SIGKILL : SIGTERM);
                        e->term_sent = true;
                        if (!early)
                                emulator_set_timer(e, e->cfg->stop_grace_ms, on_stop_grace);
                }
                return;
        }
        finalize(e);
}

/* The first launch, with the slot search and chardev-add overlapping it. */
static void first_launch(Emulator *e)
{
        /*
         * Only device_add needs the emulator to serve: the slot search and
         * chardev-add are between emud and QEMU, and the chardev connects to
         * the vhost-user socket that emud itself listens on. So the query
         * goes out first, QEMU answers while the launch runs, and chardev-add
         * follows while the emulator loads. A failure of either stops the
         * emulator again, like any later failure.
         */
        if (!e->slot && !e->slot_search && !e->vm->libvirt)
                emulator_find_slot(e);
        g_autoptr(GError) err = NULL;
        e->started = true;
        if (!emulator_launch(e, &err))
                emulator_fail(e, err->code, "%s", err->message);
}

void emulator_advance(Emulator *e)
{
        if (e->state == EMU_STATE_GONE || e->qmp_busy)
                return;
        if (e->exit_pending)
                handle_exit(e);
        if (e->ready_late) {
                e->ready_late = false;
                emu_proc_signal(&e->proc, SIGKILL);
        }
        if (e->state == EMU_STATE_ADOPTING) {
                if (e->vm->state == VM_CONNECTING)
                        return; /* wait to learn what QEMU has */
                if (e->cold && e->vm->state == VM_DEFINED)
                        settle_prepared(e);
                else if (!e->probed && emulator_vm_usable(e)) {
                        emulator_probe_device(e);
                        return;
                }
                else if (e->probed)
                        settle_adopted(e);
                else
                        e->kill_requested = true; /* QEMU is gone: nothing to adopt into */
        }
        if (e->unplug_error) {
                g_autoptr(GError) err = g_steal_pointer(&e->unplug_error);
                if (!e->kill_forced && !e->failure) {
                        abandon_kill(e, err->code, err->message);
                        return;
                }
                /* Nothing more to undo in QEMU; stop the process all the same. */
                e->device_added = e->chardev_added = false;
        }
        if (e->failure || e->kill_requested) {
                teardown(e);
                return;
        }
        if (e->state == EMU_STATE_RESTARTING) {
                if (e->ready && emu_proc_alive(&e->proc)) {
                        emulator_clear_timer(e);
                        e->restarts++;
                        EmuLogCtx ctx = emulator_log_ctx(e);
                        emu_info(&ctx, "restarted (restart %u); QEMU reconnects to %s",
                                 e->restarts, e->socket_path);
                        emulator_set_state(e, e->cold ? EMU_STATE_PREPARED
                                                      : EMU_STATE_PLUGGED);
                        emulator_mark(e, EMU_DIRTY_PROPS);
                } else if (e->restart_due) {
                        restart_now(e);
                }
                return;
        }
        if (e->state == EMU_STATE_PLUGGED || e->state == EMU_STATE_FAILED)
                return;
        if (e->cold && !advance_cold(e))
                return;
        if (!e->started) {
                first_launch(e);
                if (e->failure)
                        emulator_advance(e); /* teardown waits for the slot search's reply */
                return;
        }
        /* In a libvirt domain, libvirt chooses the slot and adds the chardev. */
        if (!e->slot && !e->vm->libvirt) {
                if (!e->slot_search)
                        emulator_find_slot(e);
                return;
        }
        if (e->kind->chardev_property && !e->chardev_added && !e->vm->libvirt) {
                if (e->kind->emulator_listens && !e->ready)
                        return; /* the chardev connects to a socket it has yet to bind */
                emulator_add_chardev(e);
                return;
        }
        if (e->kind->fd_property && !e->fd_sent && !e->device_added) {
                emulator_send_fd(e);
                return;
        }
        if (e->state == EMU_STATE_STARTING) {
                if (!e->ready)
                        return; /* waiting for the QMP greeting */
                emulator_clear_timer(e);
                EmuLogCtx ctx = emulator_log_ctx(e);
                emu_info(&ctx, "ready (%s)",
                         e->kind->readiness == EMU_READY_QMP_GREETING ? "QMP greeting received"
                         : e->kind->readiness == EMU_READY_OUTPUT     ? "it printed its line"
                         : e->kind->readiness == EMU_READY_LISTENING  ? "it listens"
                                                                     : "running");
                emulator_set_state(e, EMU_STATE_RUNNING);
        }
        if (!e->device_added) {
                emulator_set_state(e, EMU_STATE_PLUGGING);
                emulator_add_device(e);
                return;
        }
        emulator_release_slot(e); /* QEMU now shows it as occupied */
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_info(&ctx, "plugged into VM %s at %s as %s", e->vm->name,
                 e->slot ? e->slot : "the slot libvirt chose", e->qdev_id);
        emulator_set_reason(e, NULL);
        emulator_set_state(e, EMU_STATE_PLUGGED);
        answer_spawn(e);
}

/* ---- entry points ------------------------------------------------------- */

Emulator *emulator_new(const EmudConfig *cfg, Dispatch *dispatch, Vm *vm, EmuKind *kind,
                       const char *id, EmuPlan *plan, EmuRestartPolicy restart,
                       EmuPolicy *policy, EmuSeccompMode seccomp)
{
        Emulator *e = g_new0(Emulator, 1);
        e->type = DISPATCH_EMULATOR;
        e->cfg = cfg;
        e->dispatch = dispatch;
        e->vm = vm;
        e->kind = emu_kind_ref(kind); /* it outlives a reload of the kinds */
        e->plan = plan;
        e->restart = restart;
        e->policy = policy;
        e->seccomp_mode = seccomp;
        e->learned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        e->id = g_strdup(id);
        /* libvirt passes a user alias ("ua-" first) on to QEMU as the device's id. */
        e->qdev_id = g_strdup_printf(vm->libvirt ? "ua-emud-%s" : "emud-%s", id);
        e->chardev_id = g_strdup_printf("emud-%s-chr", id);
        /* Two dots: never the VM's own qmp.sock, whatever the id. */
        g_autofree char *mon = g_strdup_printf("%s.qmp.sock", id);
        e->socket_path = emulator_socket_path(vm, id, kind);
        e->monitor_path = g_build_filename(vm->dir, mon, NULL);
        e->state = EMU_STATE_STARTING;
        e->listen_fd = -1;
        e->remote_fd = -1;
        e->fd_name = g_strdup_printf("emud-%s-fd", id);
        e->restart_times = g_array_new(FALSE, FALSE, sizeof(gint64));
        e->executions = g_ptr_array_new();
        emulator_proc_init(e);
        emulator_mark(e, EMU_DIRTY_NEW);
        return e;
}

const char *emulator_socket(const Emulator *e)
{
        return e->kind->fd_property ? "" : e->socket_path;
}

char *emulator_socket_path(const Vm *vm, const char *id, const EmuKind *kind)
{
        /* An emulator that binds it itself gets a directory of its own to do it in. */
        if (kind->emulator_listens) {
                g_autofree char *dir = g_strdup_printf("%s.d", id);
                return g_build_filename(vm->dir, dir, "vu.sock", NULL);
        }
        /* Two dots: never the VM's own qmp.sock, whatever the id. */
        g_autofree char *sock = g_strdup_printf("%s.vu.sock", id);
        return g_build_filename(vm->dir, sock, NULL);
}

void emulator_free(Emulator *e)
{
        if (!e)
                return;
        dispatch_forget(e->dispatch, e);
        emulator_clear_timer(e);
        if (e->poll_timer)
                g_source_remove(e->poll_timer);
        /* Its requesters went away with emud's QMP service; nothing to answer. */
        g_clear_pointer(&e->qmp, emu_qmp_client_free);
        /* Not the cgroup leaf: that of a running process must stay for the next emud. */
        g_clear_pointer(&e->watch, emu_seccomp_watch_free);
        g_clear_pointer(&e->sandbox, emu_sandbox_free);
        emu_policy_free(e->policy);
        g_hash_table_unref(e->learned);
        g_free(e->seccomp_report);
        g_free(e->cgroup_path);
        emu_proc_deinit(&e->proc);
        emu_exit_clear(&e->last_exit);
        emu_close(e->listen_fd);
        emu_close(e->remote_fd);
        g_free(e->fd_name);
        g_clear_error(&e->failure);
        g_clear_error(&e->unplug_error);
        emu_plan_free(e->plan);
        emu_kind_unref(e->kind);
        g_strfreev(e->slot_candidates);
        g_array_unref(e->restart_times);
        for (guint i = 0; i < e->executions->len; i++)
                g_free(g_ptr_array_index(e->executions, i));
        g_ptr_array_unref(e->executions);
        g_free(e->id);
        g_free(e->qdev_id);
        g_free(e->chardev_id);
        g_free(e->socket_path);
        g_free(e->monitor_path);
        g_free(e->slot);
        g_free(e->reason);
        g_free(e->adopted_from);
        g_free(e);
}

void emulator_start(Emulator *e, DoneFunc done, void *userdata)
{
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_info(&ctx, "spawning %s for VM %s", e->kind->name, e->vm->name);
        e->spawn_done = done;
        e->spawn_userdata = userdata;
        emulator_advance(e);
}

void emulator_prepare(Emulator *e, unsigned chassis, DoneFunc done, void *userdata)
{
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_info(&ctx, "preparing %s for VM %s (cold-plug)", e->kind->name, e->vm->name);
        e->cold = true;
        e->chassis = chassis;
        e->slot = g_strdup_printf("%s-port", e->qdev_id);
        e->spawn_done = done;
        e->spawn_userdata = userdata;
        emulator_advance(e);
}

void emulator_kill(Emulator *e, bool force, DoneFunc done, void *userdata)
{
        if (e->kill_done || e->state == EMU_STATE_STOPPING || e->state == EMU_STATE_GONE) {
                g_autoptr(GError) err = g_error_new(EMU_ERROR, EMU_ERROR_BUSY,
                                                    "emulator %s is already being stopped",
                                                    e->id);
                dispatch_done(e->dispatch, done, userdata, err);
                return;
        }
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_info(&ctx, "kill requested");
        if (e->state == EMU_STATE_RESTARTING && !emu_proc_alive(&e->proc))
                emulator_clear_timer(e); /* no restart after all */
        e->kill_done = done;
        e->kill_userdata = userdata;
        e->kill_requested = true;
        e->kill_forced |= force;
        emulator_advance(e);
}

void emulator_vm_ready(Emulator *e)
{
        emulator_advance(e);
}

void emulator_vm_lost(Emulator *e)
{
        /* QEMU is gone, and with it the device and the chardev. */
        e->device_added = e->chardev_added = e->fd_sent = false;
        if (e->unplug_waiting) {
                e->unplug_waiting = false;
                emulator_clear_timer(e);
        }
        if (e->state == EMU_STATE_RESTARTING && !emu_proc_alive(&e->proc))
                emulator_clear_timer(e);
        if (e->state != EMU_STATE_PLUGGED && e->state != EMU_STATE_FAILED &&
            e->state != EMU_STATE_RESTARTING && e->state != EMU_STATE_ADOPTING &&
            e->state != EMU_STATE_GONE)
                emulator_fail(e, EMU_ERROR_VM_LOST, "VM %s went away", e->vm->name);
        e->kill_requested = true;
        emulator_advance(e);
}

void emulator_device_deleted(Emulator *e)
{
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_info(&ctx, "QEMU deleted device %s", e->qdev_id);
        e->device_added = false;
        if (e->unplug_waiting) {
                e->unplug_waiting = false;
                emulator_clear_timer(e);
        } else if (!e->kill_requested && !e->failure) {
                /* Someone else unplugged it; the emulator has no purpose left. */
                emu_info(&ctx, "device removed outside emud; stopping the emulator");
                if (e->state == EMU_STATE_RESTARTING && !emu_proc_alive(&e->proc))
                        emulator_clear_timer(e);
                e->kill_requested = true;
        }
        emulator_advance(e);
}
