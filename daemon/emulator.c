/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emulator: the life of one emulator process and its device in QEMU.
 *
 * Events arrive in any order (the process may die while chardev-add is in
 * flight, the guest may release the device while emud waits for something
 * else), so the code does not chain callbacks. Each event updates facts
 * about the emulator and calls advance(), which looks at those facts and
 * takes the next step: forwards towards "plugged" while all is well, and
 * backwards (device_del, chardev-remove, SIGTERM, SIGKILL, reap, unlink)
 * once a failure or a kill request is recorded. Only one QMP command for
 * the emulator is in flight at a time.
 */
#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "emu-error.h"
#include "emu-log.h"
#include "emu-util.h"
#include "launcher.h"
#include "manager.h"
#include "qmp-codec.h"

#define OUTPUT_LINE_MAX 4096

static void advance(Emulator *e);

const char *emu_state_name(EmuState s)
{
        static const char *const names[] = {
                [EMU_STATE_STARTING] = "starting",   [EMU_STATE_RUNNING] = "running",
                [EMU_STATE_PLUGGING] = "plugging",   [EMU_STATE_PLUGGED] = "plugged",
                [EMU_STATE_UNPLUGGING] = "unplugging", [EMU_STATE_STOPPING] = "stopping",
                [EMU_STATE_FAILED] = "failed",       [EMU_STATE_GONE] = "gone",
        };
        return s < G_N_ELEMENTS(names) ? names[s] : "?";
}

static EmuLogCtx log_ctx(const Emulator *e)
{
        return (EmuLogCtx){ .vm = e->vm->name, .emulator = e->id, .kind = e->kind->name,
                            .pid = e->pid };
}

static void set_state(Emulator *e, EmuState state)
{
        if (e->state == state)
                return;
        EmuLogCtx ctx = log_ctx(e);
        emu_debug(&ctx, "%s -> %s", emu_state_name(e->state), emu_state_name(state));
        e->state = state;
        manager_emulator_changed(e->m, e);
}

static void set_reason(Emulator *e, const char *reason)
{
        g_free(e->reason);
        e->reason = g_strdup(reason);
        manager_emulator_changed(e->m, e);
}

static void clear_timer(Emulator *e)
{
        if (e->timer) {
                g_source_remove(e->timer);
                e->timer = 0;
        }
}

/* Record the first failure of a spawn; teardown follows in advance(). */
static void fail(Emulator *e, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void fail(Emulator *e, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        EmuLogCtx ctx = log_ctx(e);
        emu_warn(&ctx, "%s", msg);
        if (!e->failure)
                e->failure = g_error_new_literal(EMU_ERROR, code, msg);
        set_reason(e, msg);
}

static bool vm_usable(const Emulator *e)
{
        return e->vm->state == VM_CONNECTED && e->vm->qmp;
}

static bool process_alive(const Emulator *e)
{
        return e->pidfd >= 0;
}

/* ---- process output ---------------------------------------------------- */

static void output_line(Emulator *e, const char *line)
{
        if (!*line)
                return;
        EmuLogCtx ctx = log_ctx(e);
        emu_log_ctx(G_LOG_LEVEL_MESSAGE, &ctx, "%s", line);
        g_free(e->last_output);
        e->last_output = g_strdup(line);
}

/* Read what is there; returns false at end of file. */
static bool drain_output(Emulator *e)
{
        char buf[4096];
        for (;;) {
                ssize_t n = read(e->output_fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n <= 0)
                        break;
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] == '\n' || e->output_line->len >= OUTPUT_LINE_MAX) {
                                output_line(e, e->output_line->str);
                                g_string_truncate(e->output_line, 0);
                                if (buf[i] == '\n')
                                        continue;
                        }
                        g_string_append_c(e->output_line, buf[i]);
                }
        }
        output_line(e, e->output_line->str);
        g_string_truncate(e->output_line, 0);
        return false;
}

static void close_output(Emulator *e)
{
        if (e->output_watch) {
                g_source_remove(e->output_watch);
                e->output_watch = 0;
        }
        e->output_fd = emu_close(e->output_fd);
}

static gboolean on_output(int fd, GIOCondition cond, gpointer userdata)
{
        Emulator *e = userdata;
        if (drain_output(e))
                return G_SOURCE_CONTINUE;
        e->output_watch = 0;
        e->output_fd = emu_close(e->output_fd);
        return G_SOURCE_REMOVE;
}

/* ---- process exit ------------------------------------------------------ */

static char *describe_exit(const siginfo_t *si)
{
        if (si->si_code == CLD_EXITED)
                return g_strdup_printf("exited with status %d", si->si_status);
        const char *name = sigabbrev_np(si->si_status);
        return g_strdup_printf("%s by signal SIG%s", si->si_code == CLD_DUMPED
                               ? "dumped core, killed" : "killed", name ? name : "?");
}

static gboolean on_process_exit(int fd, GIOCondition cond, gpointer userdata)
{
        Emulator *e = userdata;
        siginfo_t si = { 0 };
        if (waitid((idtype_t)P_PIDFD, (id_t)e->pidfd, &si, WEXITED | WNOHANG) < 0 ||
            si.si_pid == 0)
                return G_SOURCE_CONTINUE;
        e->pid_watch = 0;
        e->pidfd = emu_close(e->pidfd);
        if (e->output_fd >= 0) {
                drain_output(e);
                close_output(e);
        }

        g_autofree char *how = describe_exit(&si);
        EmuLogCtx ctx = log_ctx(e);
        bool expected = e->state == EMU_STATE_STOPPING;
        if (expected) {
                emu_info(&ctx, "%s", how);
        } else if (e->state == EMU_STATE_PLUGGED || e->state == EMU_STATE_UNPLUGGING) {
                g_autofree char *msg = g_strdup_printf("%s %s%s%s", e->kind->binary, how,
                                                       e->last_output ? ": " : "",
                                                       e->last_output ? e->last_output : "");
                emu_warn(&ctx, "%s", msg);
                set_reason(e, msg);
                if (e->state == EMU_STATE_PLUGGED)
                        set_state(e, EMU_STATE_FAILED);
        } else {
                fail(e, EMU_ERROR_SPAWN_FAILED, "%s %s%s%s", e->kind->binary, how,
                     e->last_output ? ": " : "", e->last_output ? e->last_output : "");
        }
        e->pid = 0;
        manager_emulator_changed(e->m, e);
        advance(e);
        return G_SOURCE_REMOVE;
}

static gboolean on_stop_grace(gpointer userdata)
{
        Emulator *e = userdata;
        e->timer = 0;
        EmuLogCtx ctx = log_ctx(e);
        emu_warn(&ctx, "still running %u ms after SIGTERM; sending SIGKILL",
                 e->m->cfg->stop_grace_ms);
        if (process_alive(e))
                pidfd_send_signal(e->pidfd, SIGKILL, NULL, 0);
        return G_SOURCE_REMOVE;
}

/* ---- the emulator's own QMP monitor ------------------------------------ */

static void emu_qmp_ready(EmuQmpClient *c, json_t *greeting, void *userdata)
{
        Emulator *e = userdata;
        clear_timer(e);
        EmuLogCtx ctx = log_ctx(e);
        emu_info(&ctx, "ready (QMP greeting received)");
        set_state(e, EMU_STATE_RUNNING);
        advance(e);
}

static void emu_qmp_closed(EmuQmpClient *c, const GError *reason, void *userdata)
{
        /* The process exit, seen on the pidfd, is what counts. */
        Emulator *e = userdata;
        EmuLogCtx ctx = log_ctx(e);
        emu_debug(&ctx, "QMP monitor closed: %s", reason ? reason->message : "");
}

static const EmuQmpClientOps emu_qmp_ops = {
        .ready = emu_qmp_ready,
        .closed = emu_qmp_closed,
};

static gboolean on_ready_timeout(gpointer userdata)
{
        Emulator *e = userdata;
        e->timer = 0;
        fail(e, EMU_ERROR_SPAWN_FAILED, "%s sent no QMP greeting within %u ms",
             e->kind->binary, e->m->cfg->ready_timeout_ms);
        advance(e);
        return G_SOURCE_REMOVE;
}

/* ---- starting the process ---------------------------------------------- */

static int make_listen_socket(const char *path, GError **error)
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
            bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED,
                            "cannot listen on %s: %s", path, g_strerror(errno));
                return -1;
        }
        return emu_steal_fd(&fd);
}

static bool start_process(Emulator *e, GError **error)
{
        emu_autofd listen_fd = make_listen_socket(e->socket_path, error);
        if (listen_fd < 0)
                return false;
        int pair[2], pipefd[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED, "socketpair: %s",
                            g_strerror(errno));
                g_unlink(e->socket_path);
                return false;
        }
        emu_autofd mon_ours = pair[0], mon_theirs = pair[1];
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED, "pipe: %s",
                            g_strerror(errno));
                g_unlink(e->socket_path);
                return false;
        }
        emu_autofd out_r = pipefd[0], out_w = pipefd[1];

        int fds[_EMU_FD_MAX];
        for (size_t i = 0; i < e->kind->n_fds; i++)
                fds[i] = e->kind->fds[i] == EMU_FD_LISTEN ? listen_fd : mon_theirs;
        EmuLaunchSpec spec = {
                .argv = e->plan->argv,
                .fds = fds,
                .n_fds = e->kind->n_fds,
                .output_fd = out_w,
        };
        pid_t pid = 0;
        int pidfd = -1;
        int r = emu_launch(&spec, &pid, &pidfd);
        if (r < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED, "cannot execute %s: %s",
                            e->plan->argv[0], g_strerror(-r));
                g_unlink(e->socket_path);
                return false;
        }

        e->pid = pid;
        e->pidfd = pidfd;
        e->pid_watch = g_unix_fd_add(pidfd, G_IO_IN, on_process_exit, e);
        e->listen_fd = emu_steal_fd(&listen_fd);
        e->output_fd = emu_steal_fd(&out_r);
        (void)emu_fd_nonblock(e->output_fd, true);
        e->output_watch = g_unix_fd_add(e->output_fd, G_IO_IN | G_IO_HUP, on_output, e);
        g_autofree char *label = g_strdup_printf("%s QMP monitor", e->id);
        e->qmp = emu_qmp_client_new(emu_steal_fd(&mon_ours), label, 0, &emu_qmp_ops, e);
        e->timer = g_timeout_add(e->m->cfg->ready_timeout_ms, on_ready_timeout, e);

        EmuLogCtx ctx = log_ctx(e);
        g_autofree char *cmdline = g_strjoinv(" ", e->plan->argv);
        emu_info(&ctx, "started as pid %d: %s", (int)pid, cmdline);
        manager_emulator_changed(e->m, e);
        return true;
}

/* ---- QMP steps against the VM's QEMU ----------------------------------- */

typedef void (*StepFunc)(Emulator *e, json_t *ret, const GError *error);

typedef struct {
        Emulator *e;
        StepFunc step;
} StepCall;

static void on_step_reply(EmuQmpClient *c, json_t *ret, const GError *error, void *userdata)
{
        StepCall *call = userdata;
        Emulator *e = call->e;
        StepFunc step = call->step;
        g_free(call);
        e->qmp_busy = false;
        step(e, ret, error);
        advance(e);
}

static void vm_execute(Emulator *e, const char *command, json_t *args, StepFunc step)
{
        StepCall *call = g_new0(StepCall, 1);
        call->e = e;
        call->step = step;
        e->qmp_busy = true;
        emu_qmp_client_execute(e->vm->qmp, command, args, e->m->cfg->qmp_timeout_ms,
                               on_step_reply, call);
}

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

static void step_query_pci(Emulator *e, json_t *ret, const GError *error);

static void step_qom_list(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                fail(e, EMU_ERROR_QMP_UNAVAILABLE, "cannot list the devices of VM %s: %s",
                     e->vm->name, error->message);
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
                fail(e, EMU_ERROR_NO_FREE_SLOT,
                     "VM %s has no pcie-root-port to hot-plug into (start QEMU with "
                     "-device pcie-root-port,id=rp1,chassis=1,slot=1)",
                     e->vm->name);
                return;
        }
        g_ptr_array_sort(ports, slot_cmp);
        g_ptr_array_add(ports, NULL);
        e->slot_candidates = (char **)g_ptr_array_free(g_steal_pointer(&ports), FALSE);
        vm_execute(e, "query-pci", NULL, step_query_pci);
}

static void step_query_pci(Emulator *e, json_t *ret, const GError *error)
{
        g_auto(GStrv) candidates = g_steal_pointer(&e->slot_candidates);
        if (error) {
                fail(e, EMU_ERROR_QMP_UNAVAILABLE, "query-pci on VM %s failed: %s",
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
        fail(e, EMU_ERROR_NO_FREE_SLOT, "every hotplug slot of VM %s is in use (%s)",
             e->vm->name, list);
}

static void release_slot(Emulator *e)
{
        if (e->slot)
                g_hash_table_remove(e->vm->reserved, e->slot);
}

static void step_chardev_add(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                fail(e, EMU_ERROR_HOTPLUG_FAILED, "chardev-add on VM %s failed: %s",
                     e->vm->name, error->message);
                return;
        }
        e->chardev_added = true;
}

static void step_device_add(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                fail(e, EMU_ERROR_HOTPLUG_FAILED, "device_add %s on VM %s failed: %s",
                     e->kind->driver, e->vm->name, error->message);
                return;
        }
        e->device_added = true;
}

static gboolean on_unplug_timeout(gpointer userdata)
{
        Emulator *e = userdata;
        e->timer = 0;
        e->unplug_waiting = false;
        g_autofree char *msg = g_strdup_printf(
                "the guest did not release device %s within %u ms; it stays in QEMU as it is",
                e->qdev_id, e->m->cfg->unplug_timeout_ms);
        EmuLogCtx ctx = log_ctx(e);
        emu_warn(&ctx, "%s", msg);
        set_reason(e, msg);
        if (e->m->shutting_down || e->failure) {
                /* Nothing more we can undo in QEMU; stop the process all the same. */
                e->device_added = e->chardev_added = false;
                advance(e);
                return G_SOURCE_REMOVE;
        }
        e->kill_requested = false;
        set_state(e, process_alive(e) ? EMU_STATE_PLUGGED : EMU_STATE_FAILED);
        DoneFunc done = g_steal_pointer(&e->kill_done);
        g_autoptr(GError) err = g_error_new_literal(EMU_ERROR, EMU_ERROR_TIMEOUT, msg);
        if (done)
                done(e->kill_userdata, err);
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
                EmuLogCtx ctx = log_ctx(e);
                emu_warn(&ctx, "%s", msg);
                set_reason(e, msg);
                if (e->m->shutting_down || e->failure) {
                        e->device_added = e->chardev_added = false;
                        return;
                }
                e->kill_requested = false;
                set_state(e, process_alive(e) ? EMU_STATE_PLUGGED : EMU_STATE_FAILED);
                DoneFunc done = g_steal_pointer(&e->kill_done);
                g_autoptr(GError) err = g_error_new_literal(EMU_ERROR, EMU_ERROR_HOTPLUG_FAILED,
                                                            msg);
                if (done)
                        done(e->kill_userdata, err);
                return;
        }
        if (!e->device_added)
                return; /* DEVICE_DELETED came before the reply */
        e->unplug_waiting = true;
        e->timer = g_timeout_add(e->m->cfg->unplug_timeout_ms, on_unplug_timeout, e);
}

static void step_chardev_remove(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                EmuLogCtx ctx = log_ctx(e);
                emu_warn(&ctx, "chardev-remove %s failed: %s", e->chardev_id, error->message);
        }
        e->chardev_added = false;
}

static void finalize(Emulator *e)
{
        clear_timer(e);
        close_output(e);
        e->listen_fd = emu_close(e->listen_fd);
        if (e->started && g_unlink(e->socket_path) < 0 && errno != ENOENT) {
                EmuLogCtx ctx = log_ctx(e);
                emu_warn(&ctx, "cannot remove %s: %s", e->socket_path, g_strerror(errno));
        }
        g_clear_pointer(&e->qmp, emu_qmp_client_free);
        release_slot(e);
        set_state(e, EMU_STATE_GONE);
        EmuLogCtx ctx = log_ctx(e);
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
        if (e->device_added && vm_usable(e)) {
                if (e->unplug_waiting)
                        return;
                set_state(e, EMU_STATE_UNPLUGGING);
                vm_execute(e, "device_del", json_pack("{s:s}", "id", e->qdev_id),
                           step_device_del);
                return;
        }
        if (e->chardev_added && vm_usable(e)) {
                vm_execute(e, "chardev-remove", json_pack("{s:s}", "id", e->chardev_id),
                           step_chardev_remove);
                return;
        }
        if (process_alive(e)) {
                if (!e->term_sent) {
                        set_state(e, EMU_STATE_STOPPING);
                        clear_timer(e);
                        pidfd_send_signal(e->pidfd, SIGTERM, NULL, 0);
                        e->term_sent = true;
                        e->timer = g_timeout_add(e->m->cfg->stop_grace_ms, on_stop_grace, e);
                }
                return;
        }
        finalize(e);
}

static void advance(Emulator *e)
{
        if (e->qmp_busy)
                return;
        if (e->failure || e->kill_requested) {
                teardown(e);
                return;
        }
        if (e->state == EMU_STATE_PLUGGED || e->state == EMU_STATE_FAILED)
                return;
        if (!e->slot) {
                if (!e->slot_search) {
                        e->slot_search = true;
                        vm_execute(e, "qom-list", json_pack("{s:s}", "path",
                                                            "/machine/peripheral"),
                                   step_qom_list);
                }
                return;
        }
        if (!e->started) {
                g_autoptr(GError) err = NULL;
                e->started = true;
                if (!start_process(e, &err)) {
                        e->started = false;
                        fail(e, err->code, "%s", err->message);
                        teardown(e);
                }
                return;
        }
        if (e->state == EMU_STATE_STARTING)
                return; /* waiting for the QMP greeting */
        if (!e->chardev_added) {
                set_state(e, EMU_STATE_PLUGGING);
                json_t *args = json_pack(
                        "{s:s, s:{s:s, s:{s:{s:s, s:{s:s}}, s:b, s:i}}}", "id", e->chardev_id,
                        "backend", "type", "socket", "data", "addr", "type", "unix", "data",
                        "path", e->socket_path, "server", 0, "reconnect", 1);
                vm_execute(e, "chardev-add", args, step_chardev_add);
                return;
        }
        if (!e->device_added) {
                json_t *args = json_deep_copy(e->plan->device_args);
                json_object_set_new(args, "id", json_string(e->qdev_id));
                json_object_set_new(args, "bus", json_string(e->slot));
                json_object_set_new(args, e->kind->chardev_property,
                                    json_string(e->chardev_id));
                vm_execute(e, "device_add", args, step_device_add);
                return;
        }
        release_slot(e); /* QEMU now shows it as occupied */
        EmuLogCtx ctx = log_ctx(e);
        emu_info(&ctx, "plugged into VM %s at %s as %s", e->vm->name, e->slot, e->qdev_id);
        set_reason(e, NULL);
        set_state(e, EMU_STATE_PLUGGED);
        DoneFunc done = g_steal_pointer(&e->spawn_done);
        if (done)
                done(e->spawn_userdata, NULL);
}

/* ---- entry points ------------------------------------------------------- */

Emulator *emulator_new(Manager *m, Vm *vm, const EmuKind *kind, const char *id, EmuPlan *plan)
{
        Emulator *e = g_new0(Emulator, 1);
        e->m = m;
        e->vm = vm;
        e->kind = kind;
        e->plan = plan;
        e->id = g_strdup(id);
        e->qdev_id = g_strdup_printf("emud-%s", id);
        e->chardev_id = g_strdup_printf("emud-%s-chr", id);
        g_autofree char *sock = g_strdup_printf("%s.sock", id);
        e->socket_path = g_build_filename(vm->dir, sock, NULL);
        e->object_path = g_strdup_printf("/org/emud/emulator/%s", id);
        e->state = EMU_STATE_STARTING;
        e->pidfd = e->listen_fd = e->output_fd = -1;
        e->output_line = g_string_new(NULL);
        g_hash_table_insert(m->emulators, e->id, e);
        return e;
}

void emulator_free(Emulator *e)
{
        if (!e)
                return;
        g_clear_error(&e->failure);
        emu_plan_free(e->plan);
        g_strfreev(e->slot_candidates);
        g_free(e->id);
        g_free(e->qdev_id);
        g_free(e->chardev_id);
        g_free(e->socket_path);
        g_free(e->slot);
        g_free(e->object_path);
        g_free(e->reason);
        g_free(e->last_output);
        g_string_free(e->output_line, TRUE);
        g_free(e);
}

void emulator_start(Emulator *e, DoneFunc done, void *userdata)
{
        EmuLogCtx ctx = log_ctx(e);
        emu_info(&ctx, "spawning %s for VM %s", e->kind->name, e->vm->name);
        e->spawn_done = done;
        e->spawn_userdata = userdata;
        advance(e);
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
        EmuLogCtx ctx = log_ctx(e);
        emu_info(&ctx, "kill requested");
        e->kill_done = done;
        e->kill_userdata = userdata;
        e->kill_requested = true;
        advance(e);
}

void emulator_vm_lost(Emulator *e)
{
        /* QEMU is gone, and with it the device and the chardev. */
        e->device_added = e->chardev_added = false;
        if (e->unplug_waiting) {
                e->unplug_waiting = false;
                clear_timer(e);
        }
        if (e->state != EMU_STATE_PLUGGED && e->state != EMU_STATE_FAILED)
                fail(e, EMU_ERROR_VM_LOST, "VM %s went away", e->vm->name);
        e->kill_requested = true;
        advance(e);
}

void emulator_device_deleted(Emulator *e)
{
        EmuLogCtx ctx = log_ctx(e);
        emu_info(&ctx, "QEMU deleted device %s", e->qdev_id);
        e->device_added = false;
        if (e->unplug_waiting) {
                e->unplug_waiting = false;
                clear_timer(e);
        } else if (!e->kill_requested && !e->failure) {
                /* Someone else unplugged it; the emulator has no purpose left. */
                emu_info(&ctx, "device removed outside emud; stopping the emulator");
                e->kill_requested = true;
        }
        advance(e);
}
