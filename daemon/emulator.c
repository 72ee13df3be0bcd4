/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emulator: the life of one emulator process and its device in QEMU.
 *
 * Events arrive in any order (the process may die while chardev-add is in
 * flight, the guest may release the device while emud waits for something
 * else), so the code does not chain callbacks. Each event updates facts
 * about the emulator and calls emulator_advance(), which looks at those
 * facts and takes the next step: forwards towards "plugged" while all is
 * well, and backwards (device_del, chardev-remove, SIGTERM, SIGKILL, reap,
 * unlink) once a failure or a kill request is recorded. Only one QMP
 * command for the emulator is in flight at a time.
 *
 * A plugged emulator whose process dies is restarted according to its
 * policy, with exponential backoff and a crash-loop limit. emud holds the
 * vhost-user listening socket, so the new process serves the same socket
 * and QEMU's chardev (reconnect=1) reattaches without a new hot-plug.
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "emu-error.h"
#include "emu-util.h"
#include "emulator-internal.h"
#include "confine.h"
#include "qmp-service.h"
#include "state.h"
#include "scope.h"

const char *emu_state_name(EmuState s)
{
        static const char *const names[] = {
                [EMU_STATE_STARTING] = "starting",     [EMU_STATE_RUNNING] = "running",
                [EMU_STATE_PLUGGING] = "plugging",     [EMU_STATE_PLUGGED] = "plugged",
                [EMU_STATE_RESTARTING] = "restarting", [EMU_STATE_ADOPTING] = "adopting",
                [EMU_STATE_UNPLUGGING] = "unplugging", [EMU_STATE_STOPPING] = "stopping",
                [EMU_STATE_FAILED] = "failed",         [EMU_STATE_GONE] = "gone",
        };
        return s < G_N_ELEMENTS(names) ? names[s] : "?";
}

EmuLogCtx emulator_log_ctx(const Emulator *e)
{
        return (EmuLogCtx){ .vm = e->vm->name, .emulator = e->id, .kind = e->kind->name,
                            .pid = e->proc.pid };
}

void emulator_set_state(Emulator *e, EmuState state)
{
        if (e->state == state)
                return;
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_debug(&ctx, "%s -> %s", emu_state_name(e->state), emu_state_name(state));
        e->state = state;
        manager_emulator_changed(e->m, e);
}

void emulator_set_reason(Emulator *e, const char *reason)
{
        g_free(e->reason);
        e->reason = g_strdup(reason);
        manager_emulator_changed(e->m, e);
}

void emulator_clear_timer(Emulator *e)
{
        if (e->timer) {
                g_source_remove(e->timer);
                e->timer = 0;
        }
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
        return e->vm->state == VM_CONNECTED && e->vm->qmp;
}

/* A kill that cannot complete: the emulator stays as it is and Kill gets the error. */
void emulator_finish_kill(Emulator *e, int code, const char *msg)
{
        e->kill_requested = false;
        emulator_set_state(e, emu_proc_alive(&e->proc) ? EMU_STATE_PLUGGED : EMU_STATE_FAILED);
        DoneFunc done = g_steal_pointer(&e->kill_done);
        g_autoptr(GError) err = g_error_new_literal(EMU_ERROR, code, msg);
        if (done)
                done(e->kill_userdata, err);
}

/* Free the monitor connection; QMP proxy requests still waiting on it get an error. */
static void drop_monitor(Emulator *e)
{
        if (!e->qmp)
                return;
        qmp_service_monitor_gone(e);
        g_clear_pointer(&e->qmp, emu_qmp_client_free);
}

/* ---- sockets ------------------------------------------------------------ */

static int listen_unix(const char *path, GError **error)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path)) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "socket path %s is too long; use a shorter runtime directory",
                            path);
                return -1;
        }
        strcpy(sa.sun_path, path);
        emu_autofd fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || (g_unlink(path) < 0 && errno != ENOENT) ||
            bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED,
                            "cannot listen on %s: %s", path, g_strerror(errno));
                return -1;
        }
        return emu_steal_fd(&fd);
}

int emulator_connect_unix(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
        emu_autofd fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        return emu_steal_fd(&fd);
}

/* ---- the process -------------------------------------------------------- */

static void proc_output(void *userdata, const char *line)
{
        Emulator *e = userdata;
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_log_ctx(G_LOG_LEVEL_MESSAGE, &ctx, "%s", line);
}

static char *exit_message(Emulator *e, const EmuExit *ex)
{
        const char *out = e->proc.last_output;
        return g_strdup_printf("%s %s%s%s", e->kind->binary, ex->text, out ? ": " : "",
                               out ? out : "");
}

static void proc_exited(void *userdata, const EmuExit *ex)
{
        Emulator *e = userdata;
        confine_release(e);
        emu_exit_clear(&e->last_exit);
        e->last_exit = *ex;
        e->last_exit.text = g_strdup(ex->text);
        EmuLogCtx ctx = emulator_log_ctx(e);
        drop_monitor(e);

        switch (e->state) {
        case EMU_STATE_STOPPING:
                emu_info(&ctx, "%s", ex->text);
                break;
        case EMU_STATE_PLUGGED:
        case EMU_STATE_RESTARTING:
                if (!e->kill_requested) {
                        emulator_crashed(e, ex);
                        break;
                }
                G_GNUC_FALLTHROUGH;
        case EMU_STATE_UNPLUGGING:
        case EMU_STATE_FAILED:
        case EMU_STATE_ADOPTING: {
                g_autofree char *msg = exit_message(e, ex);
                emu_warn(&ctx, "%s", msg);
                emulator_set_reason(e, msg);
                break;
        }
        default: {
                g_autofree char *msg = e->seccomp_killed ? g_strdup(e->seccomp_report)
                                                         : exit_message(e, ex);
                emulator_fail(e, EMU_ERROR_SPAWN_FAILED, "%s", msg);
                break;
        }
        }
        manager_emulator_changed(e->m, e);
        emulator_advance(e);
}

static const EmuProcOps proc_ops = {
        .output = proc_output,
        .exited = proc_exited,
};

static void emu_qmp_ready(EmuQmpClient *c, json_t *greeting, void *userdata)
{
        Emulator *e = userdata;
        EmuLogCtx ctx = emulator_log_ctx(e);
        if (e->state != EMU_STATE_STARTING && e->state != EMU_STATE_RESTARTING) {
                /* An adopted emulator's monitor answering again: nothing else changes. */
                emu_info(&ctx, "connected to its QMP monitor");
                return;
        }
        emulator_clear_timer(e);
        if (e->state == EMU_STATE_RESTARTING) {
                e->restarts++;
                emu_info(&ctx, "restarted (restart %u); QEMU reconnects to %s", e->restarts,
                         e->socket_path);
                emulator_set_state(e, EMU_STATE_PLUGGED);
                return;
        }
        emu_info(&ctx, "ready (QMP greeting received)");
        emulator_set_state(e, EMU_STATE_RUNNING);
        emulator_advance(e);
}

static void emu_qmp_closed(EmuQmpClient *c, const GError *reason, void *userdata)
{
        /* The process exit, seen on the pidfd, is what counts. */
        Emulator *e = userdata;
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_debug(&ctx, "QMP monitor closed: %s", reason ? reason->message : "");
}

static void emu_qmp_event(EmuQmpClient *c, const char *name, json_t *data, void *userdata)
{
        qmp_service_emulator_event(userdata, name, data);
}

static const EmuQmpClientOps emu_qmp_ops = {
        .ready = emu_qmp_ready,
        .event = emu_qmp_event,
        .closed = emu_qmp_closed,
};

void emulator_connect_monitor(Emulator *e, int fd)
{
        g_autofree char *label = g_strdup_printf("%s QMP monitor", e->id);
        drop_monitor(e);
        e->qmp = emu_qmp_client_new(fd, label, 0, &emu_qmp_ops, e);
}

static gboolean on_ready_timeout(gpointer userdata)
{
        Emulator *e = userdata;
        e->timer = 0;
        g_autofree char *msg = g_strdup_printf("%s sent no QMP greeting within %u ms",
                                               e->kind->binary, e->m->cfg->ready_timeout_ms);
        if (e->state == EMU_STATE_RESTARTING) {
                /* Counts as a failed restart: its exit goes through emulator_crashed() again. */
                EmuLogCtx ctx = emulator_log_ctx(e);
                emu_warn(&ctx, "%s; killing it", msg);
                emu_proc_signal(&e->proc, SIGKILL);
                return G_SOURCE_REMOVE;
        }
        emulator_fail(e, EMU_ERROR_SPAWN_FAILED, "%s", msg);
        emulator_advance(e);
        return G_SOURCE_REMOVE;
}

/*
 * Launch (or relaunch) the process: the vhost-user listening socket is
 * created once and kept; the monitor socket is new each time, listening in
 * the emulator, so that emud can reconnect to it after its own restart.
 */
static bool launch(Emulator *e, GError **error)
{
        if (e->listen_fd < 0) {
                e->listen_fd = listen_unix(e->socket_path, error);
                if (e->listen_fd < 0)
                        return false;
        }
        emu_autofd mon_listen = listen_unix(e->monitor_path, error);
        if (mon_listen < 0)
                return false;
        /* Queued in the backlog until the emulator accepts: no race with its start. */
        emu_autofd mon = emulator_connect_unix(e->monitor_path);
        if (mon < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED, "connect %s: %s",
                            e->monitor_path, g_strerror(-mon));
                return false;
        }

        g_autoptr(GError) err = NULL;
        g_autoptr(EmuSandbox) sb = confine_prepare(e, &err);
        if (!sb && err) {
                g_propagate_error(error, g_steal_pointer(&err));
                return false;
        }
        int fds[_EMU_FD_MAX];
        for (size_t i = 0; i < e->kind->n_fds; i++)
                fds[i] = e->kind->fds[i] == EMU_FD_LISTEN ? e->listen_fd : mon_listen;
        EmuLaunchSpec spec = { .argv = e->plan->argv, .fds = fds, .n_fds = e->kind->n_fds,
                               .sandbox = sb };
        int listener = -1;
        if (!emu_proc_launch(&e->proc, &spec, &listener, error))
                return false;
        e->sandbox = g_steal_pointer(&sb);
        e->seccomp_killed = false;
        confine_watch(e, listener);
        e->term_sent = false;
        scope_attach(e->m, e);
        emulator_connect_monitor(e, emu_steal_fd(&mon));
        emulator_clear_timer(e);
        e->timer = g_timeout_add(e->m->cfg->ready_timeout_ms, on_ready_timeout, e);

        EmuLogCtx ctx = emulator_log_ctx(e);
        g_autofree char *cmdline = g_strjoinv(" ", e->plan->argv);
        emu_info(&ctx, "started as pid %d: %s", (int)e->proc.pid, cmdline);
        manager_emulator_changed(e->m, e);
        /* At once: an emud killed now must find this pid in the state file. */
        state_save(e->m);
        return true;
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
        if (e->m->cfg->give_up_unplug) {
                emu_info(&ctx, "unplugging its device (give-up-action=unplug)");
                e->kill_requested = true;
                emulator_advance(e);
        }
}

static void schedule_restart(Emulator *e, const char *msg);

static gboolean on_restart_timer(gpointer userdata)
{
        Emulator *e = userdata;
        e->timer = 0;
        gint64 now = g_get_monotonic_time();
        g_array_append_val(e->restart_times, now);
        g_autoptr(GError) err = NULL;
        if (!launch(e, &err)) {
                /* Counts as an attempt like a crash: the cause (an image being replaced,
                 * say) may pass, and the crash-loop limit bounds the retries. */
                g_autofree char *msg = g_strdup_printf("restart failed: %s", err->message);
                EmuLogCtx ctx = emulator_log_ctx(e);
                emu_warn(&ctx, "%s", msg);
                schedule_restart(e, msg);
        }
        return G_SOURCE_REMOVE;
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

void emulator_crashed(Emulator *e, const EmuExit *ex)
{
        g_autofree char *msg = exit_message(e, ex);
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_warn(&ctx, "%s", msg);
        if (e->seccomp_killed) {
                /* Stopped for a policy violation: a restart would only repeat it. */
                emulator_set_state(e, EMU_STATE_FAILED);
                emulator_set_reason(e, e->seccomp_report);
                return;
        }
        if (!wants_restart(e, ex)) {
                emulator_set_state(e, EMU_STATE_FAILED);
                emulator_set_reason(e, msg);
                return;
        }
        schedule_restart(e, msg);
}

/* Another attempt after a backoff, unless the crash-loop limit is reached. */
static void schedule_restart(Emulator *e, const char *msg)
{
        const EmudConfig *cfg = e->m->cfg;
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
        emulator_clear_timer(e);
        e->timer = g_timeout_add((guint)delay, on_restart_timer, e);
}

/* ---- teardown ----------------------------------------------------------- */

static gboolean on_stop_grace(gpointer userdata)
{
        Emulator *e = userdata;
        e->timer = 0;
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_warn(&ctx, "still running %u ms after SIGTERM; sending SIGKILL",
                 e->m->cfg->stop_grace_ms);
        emu_proc_signal(&e->proc, SIGKILL);
        return G_SOURCE_REMOVE;
}

static void finalize(Emulator *e)
{
        emulator_clear_timer(e);
        e->listen_fd = emu_close(e->listen_fd);
        drop_monitor(e);
        if (e->started) {
                g_unlink(e->socket_path);
                g_unlink(e->monitor_path);
        }
        emulator_release_slot(e);
        emulator_set_state(e, EMU_STATE_GONE);
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_info(&ctx, "gone");

        DoneFunc spawn_done = g_steal_pointer(&e->spawn_done);
        DoneFunc kill_done = g_steal_pointer(&e->kill_done);
        void *spawn_userdata = e->spawn_userdata, *kill_userdata = e->kill_userdata;
        g_autoptr(GError) failure = g_steal_pointer(&e->failure);
        if (spawn_done && !failure)
                failure = g_error_new(EMU_ERROR, EMU_ERROR_SPAWN_FAILED,
                                      "emulator %s was killed before it was plugged", e->id);
        manager_emulator_gone(e->m, e);
        emulator_free(e);
        if (spawn_done)
                spawn_done(spawn_userdata, failure);
        if (kill_done)
                kill_done(kill_userdata, NULL);
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
        if (emu_proc_alive(&e->proc)) {
                if (!e->term_sent) {
                        emulator_set_state(e, EMU_STATE_STOPPING);
                        emulator_clear_timer(e);
                        emu_proc_signal(&e->proc, SIGTERM);
                        e->term_sent = true;
                        e->timer = g_timeout_add(e->m->cfg->stop_grace_ms, on_stop_grace, e);
                }
                return;
        }
        finalize(e);
}

void emulator_advance(Emulator *e)
{
        if (e->qmp_busy)
                return;
        if (e->failure || e->kill_requested) {
                if (e->state == EMU_STATE_ADOPTING && e->vm->state == VM_CONNECTING)
                        return; /* wait to learn what QEMU has */
                teardown(e);
                return;
        }
        switch (e->state) {
        case EMU_STATE_PLUGGED:
        case EMU_STATE_FAILED:
        case EMU_STATE_RESTARTING:
        case EMU_STATE_ADOPTING:
                return;
        default:
                break;
        }
        /*
         * Only device_add needs the emulator to serve: the slot search and
         * chardev-add are between emud and QEMU, and the chardev connects to
         * the vhost-user socket that emud itself listens on. So they run
         * while the emulator starts, not before or after: the query goes out
         * first, QEMU answers while the launch runs, and chardev-add follows
         * while the emulator loads. A failure of either stops the emulator
         * again, like any later failure.
         */
        if (!e->started) {
                if (!e->slot && !e->slot_search)
                        emulator_find_slot(e);
                g_autoptr(GError) err = NULL;
                e->started = true;
                if (!launch(e, &err)) {
                        emulator_fail(e, err->code, "%s", err->message);
                        /* Teardown waits for the slot search's reply, if one is due. */
                        emulator_advance(e);
                }
                return;
        }
        if (!e->slot) {
                if (!e->slot_search)
                        emulator_find_slot(e);
                return;
        }
        if (!e->chardev_added) {
                emulator_add_chardev(e);
                return;
        }
        if (e->state == EMU_STATE_STARTING)
                return; /* waiting for the QMP greeting */
        if (!e->device_added) {
                emulator_set_state(e, EMU_STATE_PLUGGING);
                emulator_add_device(e);
                return;
        }
        emulator_release_slot(e); /* QEMU now shows it as occupied */
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_info(&ctx, "plugged into VM %s at %s as %s", e->vm->name, e->slot, e->qdev_id);
        emulator_set_reason(e, NULL);
        emulator_set_state(e, EMU_STATE_PLUGGED);
        DoneFunc done = g_steal_pointer(&e->spawn_done);
        if (done)
                done(e->spawn_userdata, NULL);
}

/* ---- entry points ------------------------------------------------------- */

Emulator *emulator_new(Manager *m, Vm *vm, const EmuKind *kind, const char *id, EmuPlan *plan,
                       EmuRestartPolicy restart, EmuPolicy *policy, EmuSeccompMode seccomp)
{
        Emulator *e = g_new0(Emulator, 1);
        e->m = m;
        e->vm = vm;
        e->kind = kind;
        e->plan = plan;
        e->restart = restart;
        e->policy = policy;
        e->seccomp_mode = seccomp;
        e->learned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        e->id = g_strdup(id);
        e->qdev_id = g_strdup_printf("emud-%s", id);
        e->chardev_id = g_strdup_printf("emud-%s-chr", id);
        /* Two dots: never the VM's own qmp.sock, whatever the id. */
        g_autofree char *sock = g_strdup_printf("%s.vu.sock", id);
        g_autofree char *mon = g_strdup_printf("%s.qmp.sock", id);
        e->socket_path = g_build_filename(vm->dir, sock, NULL);
        e->monitor_path = g_build_filename(vm->dir, mon, NULL);
        e->object_path = g_strdup_printf("/org/emud/emulator/%s", id);
        e->state = EMU_STATE_STARTING;
        e->listen_fd = -1;
        e->restart_times = g_array_new(FALSE, FALSE, sizeof(gint64));
        e->executions = g_ptr_array_new();
        e->event_state = -1;
        emu_proc_init(&e->proc, &proc_ops, e);
        g_hash_table_insert(m->emulators, e->id, e);
        return e;
}

void emulator_free(Emulator *e)
{
        if (!e)
                return;
        emulator_clear_timer(e);
        drop_monitor(e);
        /* Not confine_release(): the cgroup leaf of a running process must stay. */
        g_clear_pointer(&e->watch, emu_seccomp_watch_free);
        g_clear_pointer(&e->sandbox, emu_sandbox_free);
        emu_policy_free(e->policy);
        g_hash_table_unref(e->learned);
        g_free(e->seccomp_report);
        g_free(e->cgroup_path);
        emu_proc_deinit(&e->proc);
        emu_exit_clear(&e->last_exit);
        emu_close(e->listen_fd);
        g_clear_error(&e->failure);
        emu_plan_free(e->plan);
        g_strfreev(e->slot_candidates);
        g_array_unref(e->restart_times);
        g_ptr_array_unref(e->executions);
        g_free(e->id);
        g_free(e->qdev_id);
        g_free(e->chardev_id);
        g_free(e->socket_path);
        g_free(e->monitor_path);
        g_free(e->slot);
        g_free(e->object_path);
        g_free(e->reason);
        g_free(e->adopted_from);
        if (e->bus_slot)
                sd_bus_slot_unref(e->bus_slot);
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

void emulator_kill(Emulator *e, DoneFunc done, void *userdata)
{
        if (e->kill_done || e->state == EMU_STATE_STOPPING) {
                g_autoptr(GError) err = g_error_new(EMU_ERROR, EMU_ERROR_BUSY,
                                                    "emulator %s is already being stopped",
                                                    e->id);
                done(userdata, err);
                return;
        }
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_info(&ctx, "kill requested");
        if (e->state == EMU_STATE_RESTARTING && !emu_proc_alive(&e->proc))
                emulator_clear_timer(e); /* no restart after all */
        e->kill_done = done;
        e->kill_userdata = userdata;
        e->kill_requested = true;
        emulator_advance(e);
}

void emulator_vm_lost(Emulator *e)
{
        /* QEMU is gone, and with it the device and the chardev. */
        e->device_added = e->chardev_added = false;
        if (e->unplug_waiting) {
                e->unplug_waiting = false;
                emulator_clear_timer(e);
        }
        if (e->state == EMU_STATE_RESTARTING && !emu_proc_alive(&e->proc))
                emulator_clear_timer(e);
        if (e->state != EMU_STATE_PLUGGED && e->state != EMU_STATE_FAILED &&
            e->state != EMU_STATE_RESTARTING)
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
