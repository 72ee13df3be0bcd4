/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-sandbox: a probe launched through the same launcher API as emulators
 * (emu_sandbox_new + emu_launch_full + emu_seccomp_watch_new) reports what
 * it sees from inside; the test checks that and the host's view of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu-util.h"
#include "launcher.h"
#include "sandbox-test-util.h"
#include "seccomp-watch.h"

typedef struct {
        GMainLoop *loop;
        GString *out;
        GPtrArray *reports;      /* "name|call|verdict" */
        guint out_source;
} Run;

static void on_report(const EmuSeccompReport *r, void *userdata)
{
        Run *run = userdata;
        g_test_message("seccomp %s: %s (nr %d) verdict %d", r->name, r->call, r->nr, r->verdict);
        g_ptr_array_add(run->reports,
                        g_strdup_printf("%s|%s|%d", r->name, r->call, (int)r->verdict));
}

static gboolean on_output(int fd, GIOCondition cond, void *userdata)
{
        Run *run = userdata;
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0)
                g_string_append_len(run->out, buf, n);
        if (n <= 0 || strstr(run->out->str, "done=1\n")) {
                run->out_source = 0;
                g_main_loop_quit(run->loop);
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

static gboolean on_timeout(void *userdata)
{
        g_main_loop_quit(((Run *)userdata)->loop);
        return G_SOURCE_REMOVE;
}

static char *value(const Run *run, const char *key)
{
        g_auto(GStrv) lines = g_strsplit(run->out->str, "\n", -1);
        size_t n = strlen(key);
        for (char **l = lines; *l; l++)
                if (strncmp(*l, key, n) == 0 && (*l)[n] == '=')
                        return g_strdup(*l + n + 1);
        return g_strdup("(missing)");
}

static bool reported(const Run *run, const char *needle)
{
        for (guint i = 0; i < run->reports->len; i++)
                if (strstr(run->reports->pdata[i], needle))
                        return true;
        return false;
}

#define assert_value(run, key, want)                                                            \
        do {                                                                                    \
                g_autofree char *v_ = value(run, key);                                          \
                g_assert_cmpstr(v_, ==, want);                                                  \
        } while (0)

typedef struct {
        char *dir, *image;
        EmuSandbox *sb;
        EmuLaunched l;
        EmuSeccompWatch *watch;
        int hold_w;
        Run run;
} Probe;

static void probe_start(Probe *p, const char *policy_name, const char *arg, bool writable)
{
        g_autoptr(GError) err = NULL;
        p->dir = g_dir_make_tmp("emud-probe-XXXXXX", &err);
        g_assert_no_error(err);
        p->image = g_build_filename(p->dir, "disk0.img", NULL);
        g_assert_true(g_file_set_contents(p->image, "PROBE-IMAGE", -1, &err));
        /* The emulator's unprivileged uid has to be able to open it. */
        g_assert_cmpint(chmod(p->image, 0666), ==, 0);

        g_autoptr(EmuPolicy) policy = emu_policy_load(policy_name, sbt_policy_dirs(), &err);
        g_assert_no_error(err);
        EmuSandboxBind binds[] = { { p->image, writable } };
        g_autofree char *cgname = g_strdup_printf("probe-%d", (int)getpid());
        EmuSandboxConfig cfg = {
                .steps = EMU_SANDBOX_ALL,
                .binary = g_getenv("SANDBOX_PROBE"),
                .binds = binds,
                .n_binds = 1,
                .cgroup_name = cgname,
                .memory_max = 256 << 20,
                .pids_max = 64,
                .uid = EMU_SANDBOX_ID_DEFAULT,
                .gid = EMU_SANDBOX_ID_DEFAULT,
                .policy = policy,
                .mode = EMU_SECCOMP_ENFORCE,
        };
        p->sb = emu_sandbox_new(&cfg, &err);
        g_assert_no_error(err);
        for (const char *const *n = emu_sandbox_notes(p->sb); *n; n++)
                g_test_message("sandbox note: %s", *n);

        int out[2], hold[2];
        g_assert_cmpint(pipe2(out, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(hold, O_CLOEXEC), ==, 0);
        char *argv[] = { (char *)cfg.binary, p->image, (char *)arg, NULL };
        int fds[] = { out[1], hold[0] };
        EmuLaunchSpec spec = { .argv = argv, .fds = fds, .n_fds = 2, .output_fd = -1,
                               .sandbox = p->sb };
        g_assert_true(emu_launch_full(&spec, &p->l, &err));
        g_assert_no_error(err);
        close(out[1]);
        close(hold[0]);
        p->hold_w = hold[1];
        g_assert_cmpint(p->l.listener, >=, 0);

        p->run.loop = g_main_loop_new(NULL, FALSE);
        p->run.out = g_string_new(NULL);
        p->run.reports = g_ptr_array_new_with_free_func(g_free);
        p->watch = emu_seccomp_watch_new(p->l.listener, EMU_SECCOMP_ENFORCE, p->l.pidfd,
                                         on_report, &p->run);
        emu_seccomp_watch_set_deny(p->watch, policy->default_errno ? policy->default_errno : EPERM,
                                   policy->default_action == EMU_POLICY_DEFAULT_KILL);
        p->run.out_source = g_unix_fd_add(out[0], G_IO_IN | G_IO_HUP, on_output, &p->run);
        guint t = g_timeout_add_seconds(20, on_timeout, &p->run);
        g_main_loop_run(p->run.loop);
        g_source_remove(t);
        if (p->run.out_source)
                g_source_remove(p->run.out_source);
        close(out[0]);
        g_test_message("probe said:\n%s", p->run.out->str);
}

/* Let the probe go, reap it, and return its wait status details. */
static void probe_finish(Probe *p, int *ret_code, int *ret_status)
{
        siginfo_t info = { 0 };
        close(p->hold_w);
        g_assert_cmpint(waitid(P_PIDFD, (id_t)p->l.pidfd, &info, WEXITED), ==, 0);
        *ret_code = info.si_code;
        *ret_status = info.si_status;
        /* Drain what the supervisor still has to say. */
        while (g_main_context_iteration(NULL, FALSE))
                ;
        emu_seccomp_watch_free(p->watch);
        close(p->l.pidfd);
        const char *cg = emu_sandbox_cgroup(p->sb);
        g_autofree char *cgpath = cg ? g_strdup(cg) : NULL;
        emu_sandbox_free(p->sb);
        if (cgpath)
                g_assert_false(g_file_test(cgpath, G_FILE_TEST_EXISTS)); /* leaf removed */
        g_unlink(p->image);
        g_rmdir(p->dir);
        g_free(p->image);
        g_free(p->dir);
        g_main_loop_unref(p->run.loop);
        g_string_free(p->run.out, TRUE);
        g_ptr_array_unref(p->run.reports);
}

static bool skip_without_userns(void)
{
        const char *why = sbt_userns_unavailable();
        if (why)
                g_test_skip(why);
        return why != NULL;
}

static void test_confined(void)
{
        Probe p = { 0 };
        int code, status;

        if (skip_without_userns())
                return;
        probe_start(&p, "probe", "", false);
        Run *run = &p.run;

        /* Capabilities, no_new_privs and the filter, as the process sees them. */
        assert_value(run, "CapEff", "0000000000000000");
        assert_value(run, "CapBnd", "0000000000000000");
        assert_value(run, "NoNewPrivs", "1");
        assert_value(run, "Seccomp", "2");
        /* Its own pid namespace: it is pid 1 and sees no one else. */
        assert_value(run, "pid", "1");
        assert_value(run, "procs", "1");
        /* The minimal root: no /etc (so no /etc/shadow), no /root. */
        assert_value(run, "shadow", g_strerror(ENOENT));
        assert_value(run, "root", g_strerror(ENOENT));
        assert_value(run, "etc", g_strerror(ENOENT));
        assert_value(run, "devnull", "ok");
        /* The image is there, read-only as asked. */
        assert_value(run, "image_read", "ok");
        assert_value(run, "image_write", g_strerror(EROFS));
        /* Policy: unix sockets yes, inet no, execve no, and emud names the denials. */
        assert_value(run, "socket_unix", "ok");
        assert_value(run, "socket_inet", g_strerror(EPERM));
        assert_value(run, "execve", g_strerror(EPERM));
        g_assert_true(reported(run, "socket|socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0)|1"));
        g_assert_true(reported(run, "execve|execve("));

        /* From the host: not root, and in its cgroup leaf. */
        g_autofree char *uid = sbt_proc_status(p.l.pid, "Uid");
        g_assert_nonnull(uid);
        g_autofree char *want = g_strdup_printf("%u", (unsigned)emu_sandbox_uid(p.sb));
        g_auto(GStrv) uids = g_strsplit_set(uid, " \t", -1);
        g_assert_cmpstr(uids[0], ==, want);
        g_assert_cmpstr(uids[0], !=, "0");
        g_autofree char *uidin = value(run, "uid");
        g_assert_cmpstr(uidin, ==, want); /* identity-mapped: same uid inside */

        const char *cg = emu_sandbox_cgroup(p.sb);
        if (cg) {
                g_autofree char *path = g_strdup_printf("/proc/%d/cgroup", p.l.pid);
                g_autofree char *text = NULL;
                g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
                g_autofree char *base = g_path_get_basename(cg);
                g_assert_nonnull(strstr(text, base));
                g_autofree char *mem = g_build_filename(cg, "memory.max", NULL);
                g_autofree char *pids = g_build_filename(cg, "pids.max", NULL);
                g_autofree char *memv = NULL, *pidsv = NULL;
                if (g_file_get_contents(mem, &memv, NULL, NULL))
                        g_assert_cmpint(g_ascii_strtoll(memv, NULL, 10), ==, 256 << 20);
                else
                        g_test_message("SKIP part: no memory controller in %s", cg);
                if (g_file_get_contents(pids, &pidsv, NULL, NULL))
                        g_assert_cmpint(g_ascii_strtoll(pidsv, NULL, 10), ==, 64);
                else
                        g_test_message("SKIP part: no pids controller in %s", cg);
        } else {
                g_test_message("SKIP part: no writable cgroup2 here");
        }
        probe_finish(&p, &code, &status);
        g_assert_cmpint(code, ==, CLD_EXITED);
        g_assert_cmpint(status, ==, 0);
}

static void test_kill(void)
{
        Probe p = { 0 };
        int code, status;

        if (skip_without_userns())
                return;
        probe_start(&p, "probe-kill", "kill", true);
        g_autofree char *die = value(&p.run, "about_to_die");
        g_autofree char *survived = value(&p.run, "survived");
        g_assert_cmpstr(die, ==, "1");
        g_assert_cmpstr(survived, ==, "(missing)");
        /* The image bind is writable when asked. */
        assert_value(&p.run, "image_write", "ok");
        /* Drain the supervisor: the kill happens as it answers. */
        for (int i = 0; i < 100 && !reported(&p.run, "socket|"); i++)
                g_main_context_iteration(NULL, TRUE);
        g_assert_true(reported(&p.run, "socket|socket(AF_INET6, SOCK_DGRAM, 0)|0"));
        probe_finish(&p, &code, &status);
        g_assert_cmpint(code, ==, CLD_KILLED);
        g_assert_cmpint(status, ==, SIGKILL);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/sandbox/confined", test_confined);
        g_test_add_func("/sandbox/denied-kills", test_kill);
        return g_test_run();
}
