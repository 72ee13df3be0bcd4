/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emulator-proc: an emulator's process as the state machine sees it: the
 * launch (sockets, sandbox, seccomp supervisor), its exit, its output, its
 * own QMP monitor and the commands a requester runs there. Every callback
 * here records what happened and returns to emulator_advance().
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#include "confine.h"
#include "emu-error.h"
#include "emu-socket.h"
#include "emu-util.h"
#include "emulator-internal.h"
#include "qmp-codec.h"

/* ---- the process -------------------------------------------------------- */

static void proc_output(void *userdata, const char *line)
{
        Emulator *e = userdata;
        EmuLogCtx ctx = emulator_log_ctx(e);
        emu_log_ctx(G_LOG_LEVEL_MESSAGE, &ctx, "%s", line);
        if (e->kind->readiness == EMU_READY_OUTPUT && !e->ready &&
            strstr(line, e->kind->ready_output)) {
                e->ready = true;
                emulator_advance(e);
        }
}

char *emulator_exit_message(Emulator *e, const EmuExit *ex)
{
        const char *out = e->proc.last_output;
        return g_strdup_printf("%s %s%s%s", e->kind->binary, ex->text, out ? ": " : "",
                               out ? out : "");
}

static void proc_exited(void *userdata, const EmuExit *ex)
{
        Emulator *e = userdata;
        emulator_release_confinement(e);
        emu_exit_clear(&e->last_exit);
        e->last_exit = *ex;
        e->last_exit.text = g_strdup(ex->text);
        emulator_drop_monitor(e);
        e->exit_pending = true;
        emulator_mark(e, EMU_DIRTY_STATE | EMU_DIRTY_PROPS);
        emulator_advance(e);
}

static const EmuProcOps proc_ops = {
        .output = proc_output,
        .exited = proc_exited,
};

void emulator_proc_init(Emulator *e)
{
        emu_proc_init(&e->proc, &proc_ops, e);
}

/* ---- the emulator's QMP monitor ----------------------------------------- */

typedef struct {
        Emulator *e;
        EmuExecFunc done;
        void *userdata;
} Execution;

static void emu_qmp_ready(EmuQmpClient *c, json_t *greeting, void *userdata)
{
        Emulator *e = userdata;
        EmuLogCtx ctx = emulator_log_ctx(e);
        if (e->ready) {
                /* An adopted emulator's monitor answering again: nothing else changes. */
                emu_info(&ctx, "connected to its QMP monitor");
                return;
        }
        e->ready = true;
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
        Emulator *e = userdata;
        json_t *wrapped = json_pack("{s:s, s:s}", "emulator", e->id, "event", name);
        if (data)
                json_object_set(wrapped, "data", data);
        dispatch_event(e->dispatch, e->vm->name, "__org.emud_EMULATOR_EVENT", wrapped);
}

static const EmuQmpClientOps emu_qmp_ops = {
        .ready = emu_qmp_ready,
        .event = emu_qmp_event,
        .closed = emu_qmp_closed,
};

void emulator_connect_monitor(Emulator *e, int fd)
{
        g_autofree char *label = g_strdup_printf("%s QMP monitor", e->id);
        emulator_drop_monitor(e);
        e->qmp = emu_qmp_client_new(fd, label, 0, &emu_qmp_ops, e);
}

static void execution_failed(void *userdata, const GError *error)
{
        Execution *x = userdata;
        x->done(x->userdata, NULL, error);
        g_free(x);
}

/* Free the monitor connection; what requesters still wait for gets an error. */
void emulator_drop_monitor(Emulator *e)
{
        if (!e->qmp)
                return;
        g_clear_pointer(&e->qmp, emu_qmp_client_free);
        if (!e->executions->len)
                return;
        g_autoptr(GError) err = g_error_new(EMU_QMP_ERROR, EMU_QMP_ERROR_GENERIC,
                                            "Emulator '%s' went away before it answered (%s)",
                                            e->id, emu_state_name(e->state));
        while (e->executions->len)
                dispatch_done(e->dispatch, execution_failed,
                              g_ptr_array_steal_index_fast(e->executions, 0), err);
}

static void on_execution_reply(EmuQmpClient *c, json_t *ret, const GError *error,
                               void *userdata)
{
        Execution *x = userdata;
        g_ptr_array_remove_fast(x->e->executions, x);
        x->done(x->userdata, ret, error);
        g_free(x);
}

bool emulator_execute(Emulator *e, const char *command, json_t *args, EmuExecFunc done,
                      void *userdata, GError **error)
{
        if (!e->qmp || !emu_qmp_client_is_ready(e->qmp)) {
                json_decref(args);
                g_set_error(error, EMU_QMP_ERROR, EMU_QMP_ERROR_GENERIC,
                            "Emulator '%s' has no QMP monitor to talk to (%s)", e->id,
                            emu_state_name(e->state));
                return false;
        }
        Execution *x = g_new0(Execution, 1);
        x->e = e;
        x->done = done;
        x->userdata = userdata;
        g_ptr_array_add(e->executions, x);
        emu_qmp_client_execute(e->qmp, command, args, e->cfg->qmp_timeout_ms,
                               on_execution_reply, x);
        return true;
}

/* ---- seccomp supervision ------------------------------------------------ */

static const char *const verdict_names[] = {
        [EMU_SECCOMP_DENIED_KILLED] = "denied-killed",
        [EMU_SECCOMP_DENIED] = "denied",
        [EMU_SECCOMP_ALLOWED] = "allowed",
};

static void on_seccomp_report(const EmuSeccompReport *r, void *userdata)
{
        Emulator *e = userdata;
        EmuLogCtx ctx = emulator_log_ctx(e);
        if (e->seccomp_mode == EMU_SECCOMP_LEARN) {
                g_hash_table_add(e->learned, g_strdup(r->name));
                emu_debug(&ctx, "seccomp learned %s", r->name);
                return;
        }
        g_autofree char *msg = NULL;
        switch (r->verdict) {
        case EMU_SECCOMP_DENIED_KILLED:
                msg = g_strdup_printf("seccomp denied %s (nr %d); emulator stopped", r->call,
                                      r->nr);
                e->seccomp_killed = true;
                break;
        case EMU_SECCOMP_DENIED:
                msg = g_strdup_printf("seccomp denied %s (nr %d) with %s", r->call, r->nr,
                                      g_strerror(r->error));
                break;
        case EMU_SECCOMP_ALLOWED:
                msg = g_strdup_printf("seccomp would deny %s (nr %d); allowed (log mode)",
                                      r->call, r->nr);
                break;
        }
        emu_warn(&ctx, "%s", msg);
        g_free(e->seccomp_report);
        e->seccomp_report = g_strdup(msg);
        emulator_mark(e, EMU_DIRTY_PROPS);
        json_t *args = json_array();
        for (size_t i = 0; i < G_N_ELEMENTS(r->args); i++)
                json_array_append_new(args, json_integer((json_int_t)r->args[i]));
        json_t *data = json_pack("{s:s, s:s, s:i, s:s, s:o, s:s, s:s}", "emulator", e->id,
                                 "syscall", r->name, "nr", r->nr, "call", r->call, "args",
                                 args, "verdict", verdict_names[r->verdict], "message", msg);
        dispatch_event(e->dispatch, e->vm->name, "__org.emud_EMULATOR_SECCOMP", data);
}

static void watch_seccomp(Emulator *e, int listener)
{
        if (listener < 0)
                return;
        e->watch = emu_seccomp_watch_new(listener, e->seccomp_mode, e->proc.pidfd,
                                         on_seccomp_report, e);
        if (e->policy)
                emu_seccomp_watch_set_deny(e->watch,
                                           e->policy->default_action ==
                                                           EMU_POLICY_DEFAULT_ERRNO
                                                   ? e->policy->default_errno
                                                   : EPERM,
                                           e->policy->default_action ==
                                                   EMU_POLICY_DEFAULT_KILL);
}

void emulator_release_confinement(Emulator *e)
{
        g_clear_pointer(&e->watch, emu_seccomp_watch_free);
        g_clear_pointer(&e->sandbox, emu_sandbox_free);
        if (e->cgroup_path) {
                /* An adopted emulator's leaf, made by an earlier emud. */
                if (g_rmdir(e->cgroup_path) < 0 && errno != ENOENT) {
                        EmuLogCtx ctx = emulator_log_ctx(e);
                        emu_warn(&ctx, "cannot remove cgroup %s: %s", e->cgroup_path,
                                 g_strerror(errno));
                }
                g_clear_pointer(&e->cgroup_path, g_free);
        }
}

char *emulator_dump_policy(Emulator *e, GError **error)
{
        if (e->seccomp_mode != EMU_SECCOMP_LEARN || !e->policy) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                            "emulator %s does not run in seccomp learn mode (spawn it with "
                            "--seccomp=learn)",
                            e->id);
                return NULL;
        }
        g_autofree char *header = g_strdup_printf(
                "learned by emud from emulator %s (kind %s, VM %s) on top of policy %s",
                e->id, e->kind->name, e->vm->name, e->kind->policy);
        return emu_policy_dump_learned(e->policy, e->learned, header);
}

/* ---- launch ------------------------------------------------------------- */

static int listen_or_error(const char *path, GError **error)
{
        int fd = emu_unix_listen(path, 4);
        if (fd == -ENAMETOOLONG)
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "socket path %s is too long; use a shorter runtime directory",
                            path);
        else if (fd < 0)
                g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED,
                            "cannot listen on %s: %s", path, g_strerror(-fd));
        return fd;
}

/*
 * Readiness "listening": the socket the emulator binds itself shows up as a
 * listening socket (__SO_ACCEPTCON) in /proc/PID/net/unix, the unix sockets
 * of its network namespace. Connecting to find out would take the one
 * connection some backends accept.
 */
static bool listens(pid_t pid, const char *path)
{
        g_autofree char *file = g_strdup_printf("/proc/%d/net/unix", (int)pid);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(file, &text, NULL, NULL))
                return false;
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                /* Num RefCount Protocol Flags Type St Inode Path */
                g_auto(GStrv) f = g_strsplit_set(g_strstrip(*l), " ", -1);
                guint n = 0;
                const char *cols[8] = { 0 };
                for (char **c = f; *c && n < 8; c++)
                        if (**c)
                                cols[n++] = *c;
                if (n == 8 && g_str_equal(cols[7], path) &&
                    (g_ascii_strtoull(cols[3], NULL, 16) & 0x10000))
                        return true;
        }
        return false;
}

static gboolean on_listening_poll(gpointer userdata)
{
        Emulator *e = userdata;
        if (!emu_proc_alive(&e->proc) || e->ready) {
                e->poll_timer = 0;
                return G_SOURCE_REMOVE;
        }
        if (!listens(e->proc.pid, e->socket_path))
                return G_SOURCE_CONTINUE;
        e->poll_timer = 0;
        e->ready = true;
        emulator_advance(e);
        return G_SOURCE_REMOVE;
}

static void watch_listening(Emulator *e)
{
        if (e->poll_timer)
                g_source_remove(e->poll_timer);
        e->poll_timer = g_timeout_add(10, on_listening_poll, e);
}

static gboolean on_ready_timeout(gpointer userdata)
{
        Emulator *e = userdata;
        e->timer = 0;
        g_autofree char *msg =
                e->kind->readiness == EMU_READY_LISTENING
                        ? g_strdup_printf("%s did not listen on %s within %u ms",
                                          e->kind->binary, e->socket_path,
                                          e->cfg->ready_timeout_ms)
                : e->kind->readiness == EMU_READY_OUTPUT
                        ? g_strdup_printf("%s printed no line with \"%s\" within %u ms",
                                          e->kind->binary, e->kind->ready_output,
                                          e->cfg->ready_timeout_ms)
                        : g_strdup_printf("%s sent no QMP greeting within %u ms",
                                          e->kind->binary, e->cfg->ready_timeout_ms);
        if (e->state == EMU_STATE_RESTARTING) {
                /* Counts as a failed restart: its exit is a crash like any other. */
                EmuLogCtx ctx = emulator_log_ctx(e);
                emu_warn(&ctx, "%s; killing it", msg);
                e->ready_late = true;
        } else {
                emulator_fail(e, EMU_ERROR_SPAWN_FAILED, "%s", msg);
        }
        emulator_advance(e);
        return G_SOURCE_REMOVE;
}

/* A directory of the emulator's own, for the socket it binds; no stale socket in it. */
static bool make_socket_dir(Emulator *e, GError **error)
{
        g_autofree char *dir = g_path_get_dirname(e->socket_path);
        if ((g_mkdir(dir, 0700) < 0 && errno != EEXIST) ||
            (e->cfg->sandbox &&
             chown(dir, e->cfg->emulator_uid, e->cfg->emulator_gid) < 0)) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED, "cannot prepare %s: %s",
                            dir, g_strerror(errno));
                return false;
        }
        g_unlink(e->socket_path);
        return true;
}

/*
 * Launch (or relaunch) the process. A vhost-user kind's listening socket
 * is created once and kept; the monitor socket is new each time, listening
 * in the emulator, so that emud can reconnect to it after its own restart.
 * A remote kind gets one end of a new socketpair; emud keeps the other for
 * QEMU.
 */
bool emulator_launch(Emulator *e, GError **error)
{
        if (e->kind->emulator_listens) {
                if (!make_socket_dir(e, error))
                        return false;
        } else if (e->kind->chardev_property && e->listen_fd < 0) {
                e->listen_fd = listen_or_error(e->socket_path, error);
                if (e->listen_fd < 0)
                        return false;
                if (e->vm->libvirt)
                        emulator_libvirt_grant(e);
        }
        emu_autofd mon_listen = -1, mon = -1, remote = -1;
        if (emu_kind_fd_number(e->kind, EMU_FD_MONITOR) >= 0) {
                mon_listen = listen_or_error(e->monitor_path, error);
                if (mon_listen < 0)
                        return false;
                /* Queued in the backlog until the emulator accepts: no race with its start. */
                mon = emu_unix_connect(e->monitor_path);
                if (mon < 0) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED, "connect %s: %s",
                                    e->monitor_path, g_strerror(-mon));
                        return false;
                }
        }
        if (emu_kind_fd_number(e->kind, EMU_FD_REMOTE) >= 0) {
                int pair[2];
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED, "socketpair: %s",
                                    g_strerror(errno));
                        return false;
                }
                emu_close(e->remote_fd);
                e->remote_fd = pair[0];
                remote = pair[1];
        }

        EmuLogCtx ctx = emulator_log_ctx(e);
        /* The sandbox prefixes "emud-"; '.' cannot occur in names or ids. */
        g_autofree char *leaf = g_strdup_printf("%s.%s.%u", e->vm->name, e->id, ++e->launches);
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuSandbox) sb = confine_prepare(e->cfg, e->kind, e->plan, e->policy,
                                                   e->seccomp_mode, leaf, &ctx, &err);
        if (!sb && err) {
                g_propagate_error(error, g_steal_pointer(&err));
                return false;
        }
        int fds[_EMU_FD_MAX];
        for (size_t i = 0; i < e->kind->n_fds; i++)
                fds[i] = e->kind->fds[i] == EMU_FD_LISTEN   ? e->listen_fd
                         : e->kind->fds[i] == EMU_FD_REMOTE ? remote
                                                             : mon_listen;
        EmuLaunchSpec spec = { .argv = e->plan->argv, .fds = fds, .n_fds = e->kind->n_fds,
                               .sandbox = sb };
        int listener = -1;
        if (!emu_proc_launch(&e->proc, &spec, &listener, error))
                return false;
        e->sandbox = g_steal_pointer(&sb);
        e->seccomp_killed = false;
        e->ready = e->kind->readiness == EMU_READY_EXEC;
        e->ready_late = false;
        watch_seccomp(e, listener);
        e->term_sent = false;
        if (mon >= 0)
                emulator_connect_monitor(e, emu_steal_fd(&mon));
        if (!e->ready)
                emulator_set_timer(e, e->cfg->ready_timeout_ms, on_ready_timeout);
        if (e->kind->readiness == EMU_READY_LISTENING)
                watch_listening(e);

        ctx.pid = e->proc.pid;
        g_autofree char *cmdline = g_strjoinv(" ", e->plan->argv);
        emu_info(&ctx, "started as pid %d: %s", (int)e->proc.pid, cmdline);
        emulator_mark(e, EMU_DIRTY_STATE | EMU_DIRTY_LAUNCHED);
        return true;
}

/* ---- adoption ----------------------------------------------------------- */

void emulator_adopt(Emulator *e, const char *was, pid_t pid, guint64 start_time)
{
        e->state = EMU_STATE_ADOPTING;
        e->adopted_from = g_strdup(was);
        e->cold = g_str_equal(was, "prepared");
        e->started = true;
        e->slot_search = true;
        EmuLogCtx ctx = emulator_log_ctx(e);

        int r = emu_proc_adopt(&e->proc, pid, start_time);
        if (r < 0) {
                if (pid > 0)
                        emu_warn(&ctx, "pid %d is not this emulator any more (%s); it is left "
                                 "alone",
                                 (int)pid, r == -ESRCH ? "gone or reused" : g_strerror(-r));
                /* Its process died while no emud watched: nobody else removes its leaf. */
                emulator_release_confinement(e);
                return;
        }
        e->ready = true; /* it was ready for the last emud */
        ctx.pid = e->proc.pid;
        emu_info(&ctx, "adopted the running process (was %s)", was);
        if (e->policy)
                /* Its listener went with the last emud: calls outside the policy now fail
                 * with ENOSYS in the kernel, unreported. */
                emu_info(&ctx, "seccomp: no supervisor for this process until it restarts");

        /* The vhost-user listening socket lives on in the emulator: take a copy back. */
        int n = emu_kind_fd_number(e->kind, EMU_FD_LISTEN);
        int fd = n >= 0 ? emu_proc_get_fd(&e->proc, n) : -ENOENT;
        if (fd >= 0)
                e->listen_fd = fd;
        else if (e->kind->chardev_property && !e->kind->emulator_listens)
                emu_warn(&ctx, "cannot recover its listening socket (%s); a restart will "
                         "listen on %s anew", g_strerror(-fd), e->socket_path);

        if (emu_kind_fd_number(e->kind, EMU_FD_MONITOR) < 0)
                return;
        int mon = emu_unix_connect(e->monitor_path);
        if (mon >= 0)
                emulator_connect_monitor(e, mon);
        else
                emu_warn(&ctx, "cannot reconnect to its QMP monitor %s: %s", e->monitor_path,
                         g_strerror(-mon));
}
