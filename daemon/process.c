/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * process: launching, adopting and watching one emulator process.
 *
 * A pid alone is not an identity: after emud restarts, the pid in its state
 * file may have been reused by an unrelated process. The pair (pid, start
 * time from /proc/PID/stat) is, and a pidfd taken after checking it keeps
 * pointing at that process whatever happens to the pid afterwards.
 */
#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu-error.h"
#include "emu-util.h"
#include "process.h"

#define OUTPUT_LINE_MAX 4096

void emu_exit_clear(EmuExit *e)
{
        g_clear_pointer(&e->text, g_free);
        *e = (EmuExit){ 0 };
}

void emu_proc_init(EmuProc *p, const EmuProcOps *ops, void *userdata)
{
        *p = (EmuProc){ .pidfd = -1, .output_fd = -1, .ops = ops, .userdata = userdata };
        p->line = g_string_new(NULL);
}

static void close_output(EmuProc *p)
{
        if (p->output_watch) {
                g_source_remove(p->output_watch);
                p->output_watch = 0;
        }
        p->output_fd = emu_close(p->output_fd);
}

static void stop_watching(EmuProc *p)
{
        if (p->pid_watch) {
                g_source_remove(p->pid_watch);
                p->pid_watch = 0;
        }
        p->pidfd = emu_close(p->pidfd);
}

void emu_proc_deinit(EmuProc *p)
{
        stop_watching(p);
        close_output(p);
        if (p->line)
                g_string_free(p->line, TRUE);
        p->line = NULL;
        g_clear_pointer(&p->last_output, g_free);
}

static void output_line(EmuProc *p, const char *line)
{
        if (!*line)
                return;
        g_free(p->last_output);
        p->last_output = g_strdup(line);
        p->ops->output(p->userdata, line);
}

/* Read what is there; returns false at end of file. */
static bool drain_output(EmuProc *p)
{
        char buf[4096];
        for (;;) {
                ssize_t n = read(p->output_fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n <= 0)
                        break;
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] == '\n' || p->line->len >= OUTPUT_LINE_MAX) {
                                output_line(p, p->line->str);
                                g_string_truncate(p->line, 0);
                                if (buf[i] == '\n')
                                        continue;
                        }
                        g_string_append_c(p->line, buf[i]);
                }
        }
        output_line(p, p->line->str);
        g_string_truncate(p->line, 0);
        return false;
}

static gboolean on_output(int fd, GIOCondition cond, gpointer userdata)
{
        EmuProc *p = userdata;
        if (drain_output(p))
                return G_SOURCE_CONTINUE;
        p->output_watch = 0;
        p->output_fd = emu_close(p->output_fd);
        return G_SOURCE_REMOVE;
}

static char *describe(const EmuExit *e)
{
        if (!e->known)
                return g_strdup("exited while emud was not watching (status unknown)");
        if (!e->signal)
                return g_strdup_printf("exited with status %d", e->code);
        const char *name = sigabbrev_np(e->signal);
        return g_strdup_printf("%s by signal SIG%s", e->core ? "dumped core, killed" : "killed",
                               name ? name : "?");
}

static gboolean on_pidfd(int fd, GIOCondition cond, gpointer userdata)
{
        EmuProc *p = userdata;
        EmuExit ex = { 0 };
        if (!p->adopted) {
                siginfo_t si = { 0 };
                if (waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG) < 0)
                        return G_SOURCE_CONTINUE;
                if (si.si_pid == 0)
                        return G_SOURCE_CONTINUE; /* not yet */
                ex.known = true;
                if (si.si_code == CLD_EXITED)
                        ex.code = si.si_status;
                else
                        ex.signal = si.si_status;
                ex.core = si.si_code == CLD_DUMPED;
        }
        ex.text = describe(&ex);
        p->pid_watch = 0;
        p->pidfd = emu_close(p->pidfd);
        p->pid = 0;
        p->start_time = 0;
        if (p->output_fd >= 0) {
                drain_output(p);
                close_output(p);
        }
        p->ops->exited(p->userdata, &ex);
        emu_exit_clear(&ex);
        return G_SOURCE_REMOVE;
}

guint64 emu_proc_read_start_time(pid_t pid)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL))
                return 0;
        /* The command name may contain spaces and ')': fields start after the last ')'. */
        const char *p = strrchr(text, ')');
        if (!p)
                return 0;
        g_auto(GStrv) fields = g_strsplit(p + 2, " ", 0);
        /* fields[0] is field 3 (state), so field 22 (starttime) is fields[19]. */
        if (g_strv_length(fields) < 20)
                return 0;
        return g_ascii_strtoull(fields[19], NULL, 10);
}

bool emu_proc_launch(EmuProc *p, const EmuLaunchSpec *spec, int *ret_listener, GError **error)
{
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_SPAWN_FAILED, "pipe: %s",
                            g_strerror(errno));
                return false;
        }
        emu_autofd out_r = pipefd[0], out_w = pipefd[1];
        EmuLaunchSpec s = *spec;
        s.output_fd = out_w;
        EmuLaunched l;
        if (!emu_launch_full(&s, &l, error))
                return false;
        *ret_listener = l.listener;
        pid_t pid = l.pid;
        p->pid = pid;
        p->pidfd = l.pidfd;
        p->adopted = false;
        p->start_time = emu_proc_read_start_time(pid);
        p->pid_watch = emu_fd_watch(p->pidfd, G_IO_IN, on_pidfd, p);
        p->output_fd = emu_steal_fd(&out_r);
        (void)emu_fd_nonblock(p->output_fd, true);
        p->output_watch = emu_fd_watch(p->output_fd, G_IO_IN | G_IO_HUP, on_output, p);
        g_clear_pointer(&p->last_output, g_free);
        return true;
}

int emu_proc_adopt(EmuProc *p, pid_t pid, guint64 start_time)
{
        if (pid <= 0 || start_time == 0)
                return -ESRCH;
        emu_autofd pidfd = pidfd_open(pid, 0);
        if (pidfd < 0)
                return -errno;
        /* Checked after taking the pidfd, so the answer holds for the process it names. */
        if (emu_proc_read_start_time(pid) != start_time)
                return -ESRCH;
        p->pid = pid;
        p->start_time = start_time;
        p->adopted = true;
        p->pidfd = emu_steal_fd(&pidfd);
        p->pid_watch = emu_fd_watch(p->pidfd, G_IO_IN, on_pidfd, p);
        return 0;
}

bool emu_proc_alive(const EmuProc *p)
{
        return p->pidfd >= 0;
}

void emu_proc_signal(EmuProc *p, int sig)
{
        if (p->pidfd >= 0)
                (void)pidfd_send_signal(p->pidfd, sig, NULL, 0);
}

int emu_proc_get_fd(EmuProc *p, int target_fd)
{
        if (p->pidfd < 0)
                return -ESRCH;
        int fd = (int)syscall(SYS_pidfd_getfd, p->pidfd, target_fd, 0);
        return fd < 0 ? -errno : fd; /* pidfd_getfd() sets O_CLOEXEC */
}
