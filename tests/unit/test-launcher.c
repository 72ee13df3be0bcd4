/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-launcher: what an emulator process starts with. The child is
 * /bin/sh, which inspects itself through /proc/$$ and reports on a passed fd,
 * so the checks see the exec'd process exactly as an emulator would be.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu-util.h"
#include "launcher.h"

/*
 * Lists the shell's own open fds. A glob opens the directory only while it
 * expands, so "[ -e ]" drops that fd again; redirections are avoided until
 * the list is taken because dash saves fds above 10 while one is active.
 * Command substitution keeps $$ pointing at the exec'd shell.
 */
#define SCRIPT_FDS                                                                              \
        "fds=; for f in /proc/$$/fd/*; do [ -e \"$f\" ] && fds=\"$fds ${f##*/}\"; done; "

static char *read_all(int fd)
{
        GString *s = g_string_new(NULL);
        char buf[4096];
        ssize_t n;

        while ((n = read(fd, buf, sizeof(buf))) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(n, >, 0);
                g_string_append_len(s, buf, n);
        }
        return g_string_free(s, FALSE);
}

static void make_pipe(int p[2])
{
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
}

/* Reap through the pidfd, as emud does, and check the exit status. */
static void reap(pid_t pid, int pidfd, int want_status)
{
        siginfo_t info = { 0 };

        g_assert_cmpint(waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED), ==, 0);
        g_assert_cmpint(info.si_pid, ==, pid);
        g_assert_cmpint(info.si_code, ==, CLD_EXITED);
        g_assert_cmpint(info.si_status, ==, want_status);
        g_assert_cmpint(close(pidfd), ==, 0);
}

/* No child of ours is left, running or zombie. */
static void assert_no_children(void)
{
        g_assert_cmpint(waitpid(-1, NULL, WNOHANG), ==, -1);
        g_assert_cmpint(errno, ==, ECHILD);
}

/* "key=value" lines from the script, as a table. */
static GHashTable *parse_report(const char *text)
{
        GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

        for (size_t i = 0; lines[i]; i++) {
                char *eq = strchr(lines[i], '=');
                if (eq)
                        g_hash_table_insert(t, g_strndup(lines[i], eq - lines[i]),
                                            g_strdup(eq + 1));
        }
        return t;
}

static guint64 hex_field(GHashTable *report, const char *key)
{
        const char *v = g_hash_table_lookup(report, key);
        g_assert_nonnull(v);
        return g_ascii_strtoull(v, NULL, 16);
}

static void test_fds_env_session(void)
{
        static const char script[] =
                SCRIPT_FDS
                "set -- $(cat /proc/$$/stat); "
                "envbytes=$(wc -c < /proc/$$/environ); "
                "blk=$(sed -n 's/^SigBlk:[[:space:]]*//p' /proc/$$/status); "
                "ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status); "
                "printf 'fds=%s\\npid=%s\\nsid=%s\\nenv=%s\\nblk=%s\\nign=%s\\n' "
                "\"$fds\" \"$1\" \"$6\" \"$envbytes\" \"$blk\" \"$ign\" >&3; "
                "echo four >&4; echo out; echo err >&2; exit 7";
        char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
        int report[2], four[2], output[2];
        int before = emu_count_open_fds();

        make_pipe(report);
        make_pipe(four);
        make_pipe(output);
        /* Neither a plain inheritable fd nor one far above the listed range may leak. */
        emu_autofd leak = open("/dev/null", O_RDONLY);
        emu_autofd leak_high = fcntl(leak, F_DUPFD, 200);
        g_assert_cmpint(leak, >=, 0);
        g_assert_cmpint(leak_high, >=, 200);

        /* Signal state the launcher must reset: a blocked and an ignored signal. */
        sigset_t usr1, old;
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        g_assert_cmpint(sigprocmask(SIG_BLOCK, &usr1, &old), ==, 0);
        struct sigaction ign = { .sa_handler = SIG_IGN }, old_usr2;
        g_assert_cmpint(sigaction(SIGUSR2, &ign, &old_usr2), ==, 0);

        const int fds[] = { report[1], four[1] };
        const EmuLaunchSpec spec = { argv, fds, G_N_ELEMENTS(fds), output[1] };
        pid_t pid = 0;
        int pidfd = -1;
        int r = emu_launch(&spec, &pid, &pidfd);

        g_assert_cmpint(sigaction(SIGUSR2, &old_usr2, NULL), ==, 0);
        g_assert_cmpint(sigprocmask(SIG_SETMASK, &old, NULL), ==, 0);
        g_assert_cmpint(r, ==, 0);
        g_assert_cmpint(pid, >, 0);
        g_assert_cmpint(pidfd, >=, 0);
        g_assert_true(fcntl(pidfd, F_GETFD) & FD_CLOEXEC);

        /* Our write ends go, so the reads below end when the child does. */
        close(report[1]);
        close(four[1]);
        close(output[1]);
        g_autofree char *text = read_all(report[0]);
        g_autofree char *four_text = read_all(four[0]);
        g_autofree char *out_text = read_all(output[0]);
        close(report[0]);
        close(four[0]);
        close(output[0]);
        reap(pid, pidfd, 7);
        assert_no_children();

        g_test_message("report:\n%s", text);
        g_autoptr(GHashTable) rep = parse_report(text);
        g_autofree char *pid_str = g_strdup_printf("%d", (int)pid);
        g_assert_cmpstr(g_hash_table_lookup(rep, "fds"), ==, " 0 1 2 3 4");
        g_assert_cmpstr(g_hash_table_lookup(rep, "pid"), ==, pid_str);
        g_assert_cmpstr(g_hash_table_lookup(rep, "sid"), ==, pid_str);
        g_assert_cmpstr(g_hash_table_lookup(rep, "env"), ==, "0");
        g_assert_cmphex(hex_field(rep, "blk") & (1ULL << (SIGUSR1 - 1)), ==, 0);
        g_assert_cmphex(hex_field(rep, "ign") & (1ULL << (SIGUSR2 - 1)), ==, 0);
        g_assert_cmpstr(four_text, ==, "four\n");
        g_assert_cmpstr(out_text, ==, "out\nerr\n");

        leak = emu_close(leak);
        leak_high = emu_close(leak_high);
        g_assert_cmpint(emu_count_open_fds(), ==, before);
}

/* With no fds and no output fd, the child has exactly 0, 1 and 2, on /dev/null. */
static void test_no_fds(void)
{
        static const char script[] =
                SCRIPT_FDS
                "o=$(readlink /proc/$$/fd/1); e=$(readlink /proc/$$/fd/2); "
                "i=$(readlink /proc/$$/fd/0); "
                "[ \"$fds\" = ' 0 1 2' ] && [ \"$i $o $e\" = '/dev/null /dev/null /dev/null' ] "
                "&& exit 0; exit 1";
        char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
        const EmuLaunchSpec spec = { argv, NULL, 0, -1 };
        pid_t pid = 0;
        int pidfd = -1;

        g_assert_cmpint(emu_launch(&spec, &pid, &pidfd), ==, 0);
        reap(pid, pidfd, 0);
        assert_no_children();
}

/*
 * The parent's fds sit exactly where the child wants them, swapped: fds[0]
 * is fd 4 and fds[1] is fd 3. A naive dup2 loop would clobber one of them.
 */
static void test_swapped_low_fds(void)
{
        static const char script[] = "echo to-three >&3; echo to-four >&4";
        char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
        int a[2], b[2];

        /* Under meson and a shell, fds 3 and 4 of a test are free. */
        g_assert_cmpint(fcntl(3, F_GETFD), ==, -1);
        g_assert_cmpint(fcntl(4, F_GETFD), ==, -1);
        make_pipe(a);
        make_pipe(b);
        /* The pipes took 3 and 4 themselves; move them out of the way first. */
        for (int i = 0; i < 2; i++) {
                int *ends[] = { &a[i], &b[i] };
                for (size_t j = 0; j < G_N_ELEMENTS(ends); j++) {
                        int high = fcntl(*ends[j], F_DUPFD_CLOEXEC, 100);
                        g_assert_cmpint(high, >=, 100);
                        close(*ends[j]);
                        *ends[j] = high;
                }
        }
        g_assert_cmpint(dup3(a[1], 4, O_CLOEXEC), ==, 4);
        g_assert_cmpint(dup3(b[1], 3, O_CLOEXEC), ==, 3);
        close(a[1]);
        close(b[1]);

        const int fds[] = { 4, 3 };
        const EmuLaunchSpec spec = { argv, fds, G_N_ELEMENTS(fds), -1 };
        pid_t pid = 0;
        int pidfd = -1;
        g_assert_cmpint(emu_launch(&spec, &pid, &pidfd), ==, 0);
        close(3);
        close(4);

        g_autofree char *to_a = read_all(a[0]);
        g_autofree char *to_b = read_all(b[0]);
        close(a[0]);
        close(b[0]);
        reap(pid, pidfd, 0);
        assert_no_children();
        g_assert_cmpstr(to_a, ==, "to-three\n");
        g_assert_cmpstr(to_b, ==, "to-four\n");
}

/* A failed exec is the launch call's error, with nothing left behind. */
static void test_exec_errors(void)
{
        char *missing[] = { "/nonexistent/emud-unit-binary", NULL };
        const EmuLaunchSpec spec = { missing, NULL, 0, -1 };
        int before = emu_count_open_fds();
        pid_t pid = -2;
        int pidfd = -2;

        int r = emu_launch(&spec, &pid, &pidfd);
        g_assert_cmpint(r, ==, -ENOENT);
        g_assert_cmpint(pid, ==, -2);
        g_assert_cmpint(pidfd, ==, -2);
        assert_no_children();
        g_assert_cmpint(emu_count_open_fds(), ==, before);

        /* Not executable: even root needs an x bit, so this is EACCES for everyone. */
        g_autoptr(GError) err = NULL;
        g_autofree char *path = NULL;
        int fd = g_file_open_tmp("emud-unit-noexec-XXXXXX", &path, &err);
        g_assert_no_error(err);
        g_assert_cmpint(fchmod(fd, 0644), ==, 0);
        close(fd);
        char *noexec[] = { path, NULL };
        const EmuLaunchSpec spec2 = { noexec, NULL, 0, -1 };
        r = emu_launch(&spec2, &pid, &pidfd);
        g_assert_cmpint(g_unlink(path), ==, 0);
        g_assert_cmpint(r, ==, -EACCES);
        g_assert_cmpint(pid, ==, -2);
        assert_no_children();
        g_assert_cmpint(emu_count_open_fds(), ==, before);
}

/* A bad fd in the list fails in the parent, before anything is forked. */
static void test_bad_fd(void)
{
        char *argv[] = { "/bin/true", NULL };
        const int fds[] = { 1000000 };
        const EmuLaunchSpec spec = { argv, fds, 1, -1 };
        pid_t pid = -2;
        int pidfd = -2;

        g_assert_cmpint(emu_launch(&spec, &pid, &pidfd), ==, -EBADF);
        g_assert_cmpint(pid, ==, -2);
        assert_no_children();
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/launcher/fds-env-session", test_fds_env_session);
        g_test_add_func("/launcher/no-fds", test_no_fds);
        g_test_add_func("/launcher/swapped-low-fds", test_swapped_low_fds);
        g_test_add_func("/launcher/exec-errors", test_exec_errors);
        g_test_add_func("/launcher/bad-fd", test_bad_fd);
        return g_test_run();
}
