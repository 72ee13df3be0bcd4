/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * launcher: fork/exec of emulators with an explicit fd list, the one place
 * where emud creates processes, confined (sandbox) or not.
 *
 * Every source fd is first duplicated above the range the child will use,
 * so the dup2() calls in the child cannot clobber each other whatever
 * numbers the parent's fds happen to have. A CLOEXEC pipe carries execve's
 * errno back, so "binary missing" is an error of the spawn call and not a
 * mysterious exit status later.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu-error.h"
#include "emu-util.h"
#include "launcher.h"
#include "sandbox-plan.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Runs in the child only: async-signal-safe calls, then exec or _exit. */
static void G_GNUC_NORETURN child_exec(char *const *argv, int devnull, int out, const int *src,
                                       size_t n, int err_w)
{
        static char *const empty_env[] = { NULL };
        sigset_t all;
        int errpipe = 3 + (int)n;
        int report = err_w; /* where to send errno: err_w until it has moved */

        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int sig = 1; sig < NSIG; sig++) {
                if (sig == SIGKILL || sig == SIGSTOP)
                        continue;
                struct sigaction sa = { .sa_handler = SIG_DFL };
                sigaction(sig, &sa, NULL);
        }
        if (setsid() < 0)
                goto fail;

        if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
                goto fail;
        for (size_t i = 0; i < n; i++)
                if (dup2(src[i], 3 + (int)i) < 0)
                        goto fail;
        if (dup2(err_w, errpipe) < 0 || fcntl(errpipe, F_SETFD, FD_CLOEXEC) < 0)
                goto fail;
        report = errpipe;
        if (close_range((unsigned)errpipe + 1, ~0U, 0) < 0)
                goto fail;

        execve(argv[0], argv, empty_env);
fail:;
        int e = errno;
        if (write(report, &e, sizeof(e)) < 0) {
                /* nothing more we can do */
        }
        _exit(127);
}

static int launch_sandboxed(const EmuLaunchSpec *spec, EmuLaunched *ret, char **ret_msg);

/*
 * Duplicate every fd the child gets to a number at or above base, so that the
 * child's dup2() calls cannot clobber one another, and open /dev/null, the
 * output fd and the write end of the exec-error pipe up there too. *n_src
 * counts the copies made, also on failure, so the caller can close them.
 */
static int raise_fds(const EmuLaunchSpec *spec, int base, int *src, size_t *n_src,
                     int *ret_devnull, int *ret_out, int *ret_err_r, int *ret_err_w)
{
        for (*n_src = 0; *n_src < spec->n_fds; (*n_src)++) {
                src[*n_src] = fcntl(spec->fds[*n_src], F_DUPFD_CLOEXEC, base);
                if (src[*n_src] < 0)
                        return -errno;
        }
        emu_autofd raw = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (raw < 0)
                return -errno;
        emu_autofd devnull = fcntl(raw, F_DUPFD_CLOEXEC, base);
        if (devnull < 0)
                return -errno;
        emu_autofd out = fcntl(spec->output_fd >= 0 ? spec->output_fd : devnull,
                               F_DUPFD_CLOEXEC, base);
        if (out < 0)
                return -errno;
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        emu_autofd err_r = pipefd[0];
        int err_w = fcntl(pipefd[1], F_DUPFD_CLOEXEC, base);
        emu_close(pipefd[1]);
        if (err_w < 0)
                return -errno;
        *ret_devnull = emu_steal_fd(&devnull);
        *ret_out = emu_steal_fd(&out);
        *ret_err_r = emu_steal_fd(&err_r);
        *ret_err_w = err_w;
        return 0;
}

int emu_launch(const EmuLaunchSpec *spec, pid_t *ret_pid, int *ret_pidfd)
{
        if (spec->sandbox) {
                /* No one to watch a listener here: calls outside the policy get ENOSYS. */
                g_autofree char *msg = NULL;
                EmuLaunched l;
                int r = launch_sandboxed(spec, &l, &msg);
                if (r < 0)
                        return r;
                emu_close(l.listener);
                *ret_pid = l.pid;
                *ret_pidfd = l.pidfd;
                return 0;
        }

        const int base = 3 + (int)spec->n_fds + 1;
        g_autofree int *src = g_new(int, spec->n_fds ? spec->n_fds : 1);
        size_t n_src = 0;
        int r = 0;
        emu_autofd devnull = -1, out = -1, err_r = -1, err_w = -1;

        r = raise_fds(spec, base, src, &n_src, &devnull, &out, &err_r, &err_w);
        if (r < 0)
                goto out;

        pid_t pid = fork();
        if (pid < 0) {
                r = -errno;
                goto out;
        }
        if (pid == 0)
                child_exec(spec->argv, devnull, out, src, spec->n_fds, err_w);

        err_w = emu_close(err_w);
        int child_errno = 0;
        ssize_t got;
        do
                got = read(err_r, &child_errno, sizeof(child_errno));
        while (got < 0 && errno == EINTR);
        if (got > 0) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                r = -(child_errno ? child_errno : EIO);
                goto out;
        }

        int pidfd = pidfd_open(pid, 0);
        if (pidfd < 0) {
                r = -errno;
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                goto out;
        }
        *ret_pid = pid;
        *ret_pidfd = pidfd; /* pidfd_open() sets O_CLOEXEC itself */
out:
        for (size_t i = 0; i < n_src; i++)
                emu_close(src[i]);
        return r;
}

/*
 * The sandboxed path. The child's fds are laid out as
 *   0-2 stdio, 3..3+n-1 the passed fds, 3+n the error pipe, 3+n+1 the sync
 *   socket, and the seccomp listener, once created, at 3+n+2
 * so the parent knows the listener's number without being told.
 *
 * Listener handoff: the child loads its filter with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER right before execve, then closes the sync
 * socket (close is always allowed), which the parent sees as EOF; the
 * parent takes the listener with pidfd_getfd() (kernel >= 5.6; as root we
 * pass its ptrace check). So the child sends nothing once filtered: no
 * sendmsg to allow, no SCM_RIGHTS to parse. The child's execve is then
 * usually outside the policy (no emulator may exec) and arrives as a
 * notification; the parent CONTINUEs exactly that one, since it is still
 * our own code calling, and stops reading the listener. A later execve is
 * the emulator's and is denied by the supervisor like any other call.
 */
static void G_GNUC_NORETURN child_sandboxed(const EmuLaunchSpec *spec, int devnull, int out,
                                            const int *src, int err_w, int sync_w)
{
        static char *const empty_env[] = { NULL };
        const EmuSandbox *sb = spec->sandbox;
        const int n = (int)spec->n_fds;
        const int errpipe = 3 + n, syncfd = 3 + n + 1;
        EmuChildFailure f = { .step = EMU_STEP_FDS, .index = -1 };
        int report = err_w;
        sigset_t all;

        for (int sig = 1; sig < NSIG; sig++) {
                if (sig == SIGKILL || sig == SIGSTOP)
                        continue;
                struct sigaction sa = { .sa_handler = SIG_DFL };
                sigaction(sig, &sa, NULL);
        }
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        if (setsid() < 0)
                goto fail;
        if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
                goto fail;
        for (int i = 0; i < n; i++)
                if (dup2(src[i], 3 + i) < 0)
                        goto fail;
        if (dup2(err_w, errpipe) < 0 || fcntl(errpipe, F_SETFD, FD_CLOEXEC) < 0)
                goto fail;
        report = errpipe;
        if (dup2(sync_w, syncfd) < 0 || fcntl(syncfd, F_SETFD, FD_CLOEXEC) < 0 ||
            close_range((unsigned)syncfd + 1, ~0U, 0) < 0)
                goto fail;

        if (emu_sandbox_child_apply(sb, syncfd, syncfd, &f) < 0) {
                if (sb->bpf && f.step > EMU_STEP_SECCOMP)
                        _exit(127);
                goto report;
        }
        execve(spec->argv[0], spec->argv, empty_env);
        /* Once filtered, write() may be outside the policy and would block; exit says it. */
        if (sb->bpf)
                _exit(127);
        f.step = EMU_STEP_EXEC;
fail:
        f.error = errno;
report:
        if (write(report, &f, sizeof(f)) < 0) {
                /* nothing more we can do */
        }
        _exit(127);
}

static int write_proc(pid_t pid, const char *file, const char *text)
{
        char path[64];
        g_snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
        emu_autofd fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, text, strlen(text)) < 0)
                return -errno;
        return 0;
}

static int wait_readable(struct pollfd *p, nfds_t n, int timeout_ms)
{
        int r;
        do
                r = poll(p, n, timeout_ms);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : r == 0 ? -ETIMEDOUT : 0;
}

/*
 * Wait until the child has exec'd (error pipe at EOF) or failed (a failure
 * record). While the listener exists, CONTINUE the child's own execve.
 */
static int wait_exec(int err_r, int listener, pid_t pid, EmuChildFailure *ret_failure)
{
        bool exec_seen = false;

        for (;;) {
                struct pollfd p[2] = { { .fd = err_r, .events = POLLIN },
                                       { .fd = exec_seen ? -1 : listener, .events = POLLIN } };
                int r = wait_readable(p, listener >= 0 ? 2 : 1, 30000);
                if (r < 0)
                        return r;
                if (p[0].revents) {
                        EmuChildFailure f;
                        ssize_t got;
                        do
                                got = read(err_r, &f, sizeof(f));
                        while (got < 0 && errno == EINTR);
                        if (got == (ssize_t)sizeof(f)) {
                                *ret_failure = f;
                                return -(f.error ? f.error : EIO);
                        }
                        return got < 0 ? -errno : 0;
                }
                if (p[1].revents & POLLIN) {
                        g_autofree struct seccomp_notif *req = NULL;
                        g_autofree struct seccomp_notif_resp *resp = NULL;
                        if (seccomp_notify_alloc(&req, &resp) < 0)
                                return -ENOMEM;
                        memset(req, 0, sizeof(*req));
                        if (seccomp_notify_receive(listener, req) < 0)
                                continue;
                        memset(resp, 0, sizeof(*resp));
                        resp->id = req->id;
                        g_autofree char *name =
                                seccomp_syscall_resolve_num_arch(req->data.arch, req->data.nr);
                        if ((pid_t)req->pid == pid && name &&
                            (g_str_equal(name, "execve") || g_str_equal(name, "execveat"))) {
                                resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
                                exec_seen = true;
                        } else {
                                /* Not ours to allow; the supervisor is not there yet. */
                                resp->error = -EPERM;
                        }
                        (void)seccomp_notify_respond(listener, resp);
                }
        }
}

static void reap(pid_t pid)
{
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

static int launch_sandboxed(const EmuLaunchSpec *spec, EmuLaunched *ret, char **ret_msg)
{
        const EmuSandbox *sb = spec->sandbox;
        const int base = 3 + (int)spec->n_fds + 3;
        g_autofree int *src = g_new(int, spec->n_fds ? spec->n_fds : 1);
        size_t n_src = 0;
        int r = 0, pidfd = -1;
        emu_autofd devnull = -1, out = -1, err_r = -1, err_w = -1, sync_p = -1, sync_c = -1;
        emu_autofd listener = -1;
        EmuChildFailure f = { .step = -1, .index = -1 };
        pid_t pid = -1;

        r = raise_fds(spec, base, src, &n_src, &devnull, &out, &err_r, &err_w);
        if (r < 0)
                goto out;
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
                r = -errno;
                goto out;
        }
        sync_p = pair[0];
        sync_c = fcntl(pair[1], F_DUPFD_CLOEXEC, base);
        emu_close(pair[1]);
        if (sync_c < 0) {
                r = -errno;
                goto out;
        }

        struct clone_args args = {
                .flags = sb->clone_flags | CLONE_PIDFD |
                         (sb->cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
                .pidfd = (uint64_t)(uintptr_t)&pidfd,
                .exit_signal = SIGCHLD,
                .cgroup = (uint64_t)(sb->cgroup_fd >= 0 ? sb->cgroup_fd : 0),
        };
        /* No handler of ours may run in the child before it has reset them. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0)
                child_sandboxed(spec, devnull, out, src, err_w, sync_c);
        int clone_errno = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (pid < 0) {
                r = -clone_errno;
                *ret_msg = g_strdup_printf("clone3: %s", g_strerror(clone_errno));
                goto out;
        }
        err_w = emu_close(err_w);
        sync_c = emu_close(sync_c);

        if (sb->userns && ((r = write_proc(pid, "uid_map", sb->uid_map)) < 0 ||
                           (r = write_proc(pid, "gid_map", sb->gid_map)) < 0)) {
                *ret_msg = g_strdup_printf("writing the id maps: %s", g_strerror(-r));
                goto fail;
        }
        if (write(sync_p, "g", 1) != 1) {
                r = -errno;
                goto fail; /* the child died; its failure record says why */
        }
        if (emu_sandbox_has_listener(sb)) {
                char b;
                struct pollfd p[2] = { { .fd = err_r, .events = POLLIN },
                                       { .fd = sync_p, .events = POLLIN } };
                if ((r = wait_readable(p, 2, 30000)) < 0)
                        goto fail;
                if (p[0].revents || read(sync_p, &b, 1) != 0) {
                        r = wait_exec(err_r, -1, pid, &f);
                        goto fail;
                }
                listener = pidfd_getfd(pidfd, 3 + (int)spec->n_fds + 2, 0);
                char link[64] = "", path[64];
                g_snprintf(path, sizeof(path), "/proc/self/fd/%d", listener);
                if (listener < 0 || readlink(path, link, sizeof(link) - 1) < 0 ||
                    !strstr(link, "seccomp")) {
                        r = listener < 0 ? -errno : -EBADF;
                        *ret_msg = g_strdup_printf("taking the seccomp listener: %s",
                                                   g_strerror(-r));
                        goto fail;
                }
        }
        r = wait_exec(err_r, listener, pid, &f);
        if (r < 0)
                goto fail;
        /* A filtered child cannot write its failure; it exits 127 right away instead. */
        siginfo_t info = { 0 };
        if (sb->bpf && waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            info.si_pid == pid && info.si_code == CLD_EXITED && info.si_status == 127) {
                r = -ENOEXEC;
                *ret_msg = g_strdup("exited with status 127 before or at execve");
                goto fail;
        }
        ret->pid = pid;
        ret->pidfd = pidfd;
        ret->listener = emu_steal_fd(&listener);
        goto out;
fail:
        if (!*ret_msg && f.step >= 0) {
                const char *what = "";
                if (f.step == EMU_STEP_MOUNTS && f.index >= 0 &&
                    (size_t)f.index < sb->n_mounts)
                        what = sb->mounts[f.index].src ? sb->mounts[f.index].src
                                                       : sb->mounts[f.index].dst;
                *ret_msg = g_strdup_printf("%s%s%s: %s", emu_child_step_name(f.step),
                                           *what ? ": " : "", what, g_strerror(-r));
        }
        pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
        reap(pid);
        emu_close(pidfd);
out:
        for (size_t i = 0; i < n_src; i++)
                emu_close(src[i]);
        return r;
}

bool emu_launch_full(const EmuLaunchSpec *spec, EmuLaunched *ret, GError **error)
{
        g_autofree char *msg = NULL;
        EmuLaunched l = { .pid = -1, .pidfd = -1, .listener = -1 };
        int r;

        if (spec->sandbox) {
                r = launch_sandboxed(spec, &l, &msg);
        } else {
                r = emu_launch(spec, &l.pid, &l.pidfd);
        }
        if (r < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED, "cannot start %s: %s",
                            spec->argv[0], msg ? msg : g_strerror(-r));
                return false;
        }
        *ret = l;
        return true;
}
