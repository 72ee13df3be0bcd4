/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * launcher: fork/exec of emulators with an explicit fd list.
 *
 * Every source fd is first duplicated above the range the child will use,
 * so the dup2() calls in the child cannot clobber each other whatever
 * numbers the parent's fds happen to have. A CLOEXEC pipe carries execve's
 * errno back, so "binary missing" is an error of the spawn call and not a
 * mysterious exit status later.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu-util.h"
#include "launcher.h"

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

int emu_launch(const EmuLaunchSpec *spec, pid_t *ret_pid, int *ret_pidfd)
{
        const int base = 3 + (int)spec->n_fds + 1;
        g_autofree int *src = g_new(int, spec->n_fds ? spec->n_fds : 1);
        size_t n_src = 0;
        int r = 0;
        emu_autofd devnull = -1, out = -1, err_r = -1, err_w = -1;

        for (; n_src < spec->n_fds; n_src++) {
                src[n_src] = fcntl(spec->fds[n_src], F_DUPFD_CLOEXEC, base);
                if (src[n_src] < 0) {
                        r = -errno;
                        goto out;
                }
        }
        int raw = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (raw < 0) {
                r = -errno;
                goto out;
        }
        devnull = fcntl(raw, F_DUPFD_CLOEXEC, base);
        emu_close(raw);
        out = fcntl(spec->output_fd >= 0 ? spec->output_fd : devnull, F_DUPFD_CLOEXEC, base);
        int pipefd[2];
        if (devnull < 0 || out < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
                r = -errno;
                goto out;
        }
        err_r = pipefd[0];
        err_w = fcntl(pipefd[1], F_DUPFD_CLOEXEC, base);
        emu_close(pipefd[1]);
        if (err_w < 0) {
                r = -errno;
                goto out;
        }

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
