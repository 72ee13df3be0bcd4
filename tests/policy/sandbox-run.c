/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox-run: run one program confined, through the library the daemon
 * uses (emu_sandbox_new, emu_launch_full, emu_seccomp_watch_new), for the
 * python integration tests. Not installed.
 *
 *   sandbox-run [--policy NAME] [--mode enforce|log|learn] [--bind PATH[:rw]]...
 *               [--fd N]... [--learn-out FILE] [--policy-dir DIR] [--name NAME]
 *               -- BINARY ARG...
 *
 * --fd N passes our fd N as the child's fd 3, 4... in order. Lines on stdout:
 * "started PID", one line per seccomp report, "exited CODE STATUS".
 * SIGTERM and SIGINT are passed on to the child, as emud does.
 */
#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher.h"
#include "seccomp-watch.h"

static GMainLoop *loop;
static int child_pidfd = -1;
static const char *name = "emu";

static void on_report(const EmuSeccompReport *r, void *userdata)
{
        static const char *const what[] = { "denied", "denied", "allowed" };
        printf("%s: seccomp %s %s (nr %d)%s\n", name, what[r->verdict], r->call, r->nr,
               r->verdict == EMU_SECCOMP_DENIED_KILLED ? "; emulator stopped" : "");
        fflush(stdout);
}

static gboolean on_signal(void *userdata)
{
        (void)pidfd_send_signal(child_pidfd, GPOINTER_TO_INT(userdata), NULL, 0);
        return G_SOURCE_CONTINUE;
}

static gboolean on_exit_cb(int fd, GIOCondition cond, void *userdata)
{
        g_main_loop_quit(loop);
        return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
        g_autofree char *policy_name = NULL, *mode_name = NULL, *learn_out = NULL;
        g_autofree char *policy_dir = NULL;
        g_auto(GStrv) binds = NULL;
        g_autofree int *fdv = NULL;
        char **fd_args = NULL;
        g_autoptr(GError) err = NULL;
        GOptionEntry entries[] = {
                { "policy", 0, 0, G_OPTION_ARG_STRING, &policy_name, "policy name", NULL },
                { "mode", 0, 0, G_OPTION_ARG_STRING, &mode_name, "enforce, log, learn", NULL },
                { "bind", 0, 0, G_OPTION_ARG_STRING_ARRAY, &binds, "PATH[:rw]", NULL },
                { "fd", 0, 0, G_OPTION_ARG_STRING_ARRAY, &fd_args, "fd to pass", NULL },
                { "learn-out", 0, 0, G_OPTION_ARG_FILENAME, &learn_out, "learned policy", NULL },
                { "policy-dir", 0, 0, G_OPTION_ARG_FILENAME, &policy_dir, "looked in first", NULL },
                { "name", 0, 0, G_OPTION_ARG_STRING, &name, "name in reports", NULL },
                { NULL },
        };
        g_autoptr(GOptionContext) ctx = g_option_context_new("-- BINARY ARG...");
        g_option_context_add_main_entries(ctx, entries, NULL);
        if (!g_option_context_parse(ctx, &argc, &argv, &err) || argc < 2) {
                fprintf(stderr, "sandbox-run: %s\n", err ? err->message : "no binary");
                return 2;
        }
        char **child_argv = argv + 1;
        if (g_str_equal(child_argv[0], "--"))
                child_argv++;

        EmuSeccompMode mode = EMU_SECCOMP_ENFORCE;
        if (mode_name && !emu_seccomp_mode_from_name(mode_name, &mode)) {
                fprintf(stderr, "sandbox-run: bad mode %s\n", mode_name);
                return 2;
        }
        const char *src = g_getenv("EMUD_SOURCE_ROOT");
        g_autofree char *d0 = g_build_filename(src ? src : ".", "tests/policy/policies", NULL);
        g_autofree char *d1 = g_build_filename(src ? src : ".", "policy/policies", NULL);
        const char *dirs[] = { policy_dir ? policy_dir : d0, d0, d1, NULL };
        g_autoptr(EmuPolicy) policy = emu_policy_load(policy_name ? policy_name : "vhost-user-blk",
                                                      dirs, &err);
        if (!policy) {
                fprintf(stderr, "sandbox-run: %s\n", err->message);
                return 1;
        }
        guint n_binds = binds ? g_strv_length(binds) : 0;
        g_autofree EmuSandboxBind *bv = g_new0(EmuSandboxBind, n_binds + 1);
        for (guint i = 0; i < n_binds; i++) {
                char *colon = strrchr(binds[i], ':');
                bv[i].writable = colon && g_str_equal(colon, ":rw");
                if (colon && (g_str_equal(colon, ":rw") || g_str_equal(colon, ":ro")))
                        *colon = '\0';
                bv[i].path = binds[i];
        }
        guint n_fds = fd_args ? g_strv_length(fd_args) : 0;
        fdv = g_new0(int, n_fds + 1);
        for (guint i = 0; i < n_fds; i++)
                fdv[i] = (int)g_ascii_strtoll(fd_args[i], NULL, 10);

        EmuSandboxConfig cfg = {
                .steps = EMU_SANDBOX_ALL,
                .binary = child_argv[0],
                .binds = bv,
                .n_binds = n_binds,
                .cgroup_name = name,
                .memory_max = 1ULL << 30,
                .pids_max = 256,
                .uid = EMU_SANDBOX_ID_DEFAULT,
                .gid = EMU_SANDBOX_ID_DEFAULT,
                .policy = policy,
                .mode = mode,
        };
        g_autoptr(EmuSandbox) sb = emu_sandbox_new(&cfg, &err);
        if (!sb) {
                fprintf(stderr, "sandbox-run: %s\n", err->message);
                return 1;
        }
        for (const char *const *n = emu_sandbox_notes(sb); *n; n++)
                fprintf(stderr, "sandbox-run: note: %s\n", *n);
        EmuLaunchSpec spec = { .argv = child_argv, .fds = fdv, .n_fds = n_fds, .output_fd = 2,
                               .sandbox = sb };
        EmuLaunched l;
        if (!emu_launch_full(&spec, &l, &err)) {
                fprintf(stderr, "sandbox-run: %s\n", err->message);
                return 1;
        }
        for (guint i = 0; i < n_fds; i++)
                close(fdv[i]); /* the child has them; keep no copy, as emud does not */
        child_pidfd = l.pidfd;
        printf("started %d\n", (int)l.pid);
        fflush(stdout);

        loop = g_main_loop_new(NULL, FALSE);
        g_autoptr(EmuSeccompWatch) w = emu_seccomp_watch_new(l.listener, mode, l.pidfd, on_report,
                                                             NULL);
        emu_seccomp_watch_set_deny(w, policy->default_errno,
                                   policy->default_action == EMU_POLICY_DEFAULT_KILL);
        g_unix_signal_add(SIGTERM, on_signal, GINT_TO_POINTER(SIGTERM));
        g_unix_signal_add(SIGINT, on_signal, GINT_TO_POINTER(SIGTERM));
        g_unix_fd_add(l.pidfd, G_IO_IN, on_exit_cb, NULL);
        g_main_loop_run(loop);
        while (g_main_context_iteration(NULL, FALSE))
                ;

        siginfo_t info = { 0 };
        waitid(P_PIDFD, (id_t)l.pidfd, &info, WEXITED);
        printf("exited %s %d\n", info.si_code == CLD_EXITED ? "status" : "signal", info.si_status);
        fflush(stdout);
        if (learn_out) {
                g_autofree char *header = g_strdup_printf(
                        "Learned by emud from %s, base policy %s", child_argv[0], policy->name);
                g_autofree char *text =
                        emu_policy_dump_learned(policy, emu_seccomp_watch_seen(w), header);
                if (!g_file_set_contents(learn_out, text, -1, &err)) {
                        fprintf(stderr, "sandbox-run: %s\n", err->message);
                        return 1;
                }
        }
        g_strfreev(fd_args);
        return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}
