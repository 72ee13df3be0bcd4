/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-spawn-errors: bad policies and impossible sandboxes fail the spawn
 * with a clear message, start nothing and leak no fd (counted in
 * /proc/self/fd before and after) and no cgroup leaf.
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu-util.h"
#include "launcher.h"
#include "sandbox-test-util.h"

static char *dir;

static void put(const char *name, const char *text)
{
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void assert_no_children(void)
{
        g_assert_cmpint(waitpid(-1, NULL, WNOHANG), ==, -1);
        g_assert_cmpint(errno, ==, ECHILD);
}

/* What the daemon does for a spawn: load, build the sandbox, launch. */
static bool spawn(const char *policy_name, const char *bind, GError **error)
{
        const char *dirs[] = { dir, sbt_policy_dirs()[1], NULL };
        g_autoptr(EmuPolicy) p = emu_policy_load(policy_name, dirs, error);
        if (!p)
                return false;
        EmuSandboxBind binds[] = { { bind, false } };
        EmuSandboxConfig cfg = {
                .steps = EMU_SANDBOX_ALL,
                .binary = g_getenv("SANDBOX_PROBE"),
                .binds = binds,
                .n_binds = bind ? 1 : 0,
                .cgroup_name = "spawn-errors",
                .uid = EMU_SANDBOX_ID_DEFAULT,
                .gid = EMU_SANDBOX_ID_DEFAULT,
                .policy = p,
        };
        g_autoptr(EmuSandbox) sb = emu_sandbox_new(&cfg, error);
        if (!sb)
                return false;
        char *argv[] = { (char *)cfg.binary, "/nonexistent", NULL };
        EmuLaunchSpec spec = { .argv = argv, .output_fd = -1, .sandbox = sb };
        EmuLaunched l;
        if (!emu_launch_full(&spec, &l, error))
                return false;
        g_assert_not_reached();
}

static void check(const char *policy, const char *bind, const char *want)
{
        g_autoptr(GError) err = NULL;
        int before = emu_count_open_fds();
        g_assert_false(spawn(policy, bind, &err));
        g_assert_nonnull(err);
        g_test_message("%s", err->message);
        if (!strstr(err->message, want))
                g_error("\"%s\" does not contain \"%s\"", err->message, want);
        g_assert_cmpint(emu_count_open_fds(), ==, before);
        assert_no_children();
        g_assert_false(g_file_test("/sys/fs/cgroup/unified/emud-spawn-errors", G_FILE_TEST_EXISTS));
        g_assert_false(g_file_test("/sys/fs/cgroup/emud-spawn-errors", G_FILE_TEST_EXISTS));
}

static void test_bad_policies(void)
{
        put("unknown.policy", "@default kill\n@include base\n\nnot_a_syscall\n");
        put("syntax.policy", "@default kill\nsocket: arg0 === 1\n");
        put("loop1.policy", "@include loop2\n");
        put("loop2.policy", "read\n@include loop1\n");
        put("missing.policy", "read\n@include does-not-exist\n");
        check("unknown", NULL, "unknown.policy:4: unknown syscall \"not_a_syscall\"");
        check("syntax", NULL, "syntax.policy:2: ");
        check("loop1", NULL, "loop2.policy:2: include loop: loop1 -> loop2 -> loop1");
        check("missing", NULL, "missing.policy:2: @include does-not-exist: policy");
        check("no-such-policy", NULL, "policy \"no-such-policy\" not found");
}

static void test_bad_sandbox(void)
{
        put("ok.policy", "@default kill\n@include base\n");
        check("ok", "/nonexistent/disk.img", "cannot bind /nonexistent/disk.img");
        check("ok", "relative.img", "relative.img is not an absolute path");
}

/* A failure inside the child (here: the image vanishes between plan and launch). */
static void test_child_failure(void)
{
        g_autoptr(GError) err = NULL;
        if (sbt_userns_unavailable()) {
                g_test_skip(sbt_userns_unavailable());
                return;
        }
        g_autofree char *img = g_build_filename(dir, "vanishing.img", NULL);
        g_assert_true(g_file_set_contents(img, "x", -1, NULL));
        const char *dirs[] = { dir, sbt_policy_dirs()[1], NULL };
        g_autoptr(EmuPolicy) p = emu_policy_load("ok", dirs, &err);
        g_assert_no_error(err);
        EmuSandboxBind binds[] = { { img, false } };
        EmuSandboxConfig cfg = { .steps = EMU_SANDBOX_ALL, .binary = g_getenv("SANDBOX_PROBE"),
                                 .binds = binds, .n_binds = 1, .cgroup_name = "spawn-errors",
                                 .uid = EMU_SANDBOX_ID_DEFAULT, .gid = EMU_SANDBOX_ID_DEFAULT,
                                 .policy = p };
        int before = emu_count_open_fds();
        g_autoptr(EmuSandbox) sb = emu_sandbox_new(&cfg, &err);
        g_assert_no_error(err);
        g_assert_cmpint(g_unlink(img), ==, 0);
        char *argv[] = { (char *)cfg.binary, img, NULL };
        EmuLaunchSpec spec = { .argv = argv, .output_fd = -1, .sandbox = sb };
        EmuLaunched l;
        g_assert_false(emu_launch_full(&spec, &l, &err));
        g_test_message("%s", err->message);
        g_assert_nonnull(strstr(err->message, "mounts: "));
        g_assert_nonnull(strstr(err->message, g_strerror(ENOENT)));
        g_assert_nonnull(strstr(err->message, "vanishing.img"));
        g_clear_pointer(&sb, emu_sandbox_free);
        g_assert_cmpint(emu_count_open_fds(), ==, before);
        assert_no_children();
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        dir = g_dir_make_tmp("emud-spawnerr-XXXXXX", NULL);
        g_test_add_func("/spawn-errors/bad-policies", test_bad_policies);
        g_test_add_func("/spawn-errors/bad-sandbox", test_bad_sandbox);
        g_test_add_func("/spawn-errors/child-failure", test_child_failure);
        int r = g_test_run();
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
        (void)!system(cmd);
        return r;
}
