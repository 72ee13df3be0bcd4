/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-interop: discovery of vhost-user backends from QEMU's interop
 * descriptors. Directories and fake backends (shell scripts) are built in a
 * scratch tree; each test removes it before asserting, so a failure leaves
 * nothing behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "emu-util.h"
#include "interop.h"

#define MISSING_BINARY "/nonexistent/emud-unit/backend"

static char *tmp_root(void)
{
        g_autoptr(GError) err = NULL;
        char *root = g_dir_make_tmp("emud-unit-interop-XXXXXX", &err);

        g_assert_no_error(err);
        return root;
}

/* Write root/rel (making its directory) with the given mode; returns the full path. */
static char *tmp_write(const char *root, const char *rel, const char *text, int mode)
{
        g_autoptr(GError) err = NULL;
        char *path = g_build_filename(root, rel, NULL);
        g_autofree char *dir = g_path_get_dirname(path);

        g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
        g_file_set_contents(path, text, -1, &err);
        g_assert_no_error(err);
        g_assert_cmpint(g_chmod(path, mode), ==, 0);
        return path;
}

/* A well-formed descriptor, with a tag and a key from the future that must be ignored. */
static void write_descriptor(const char *root, const char *rel, const char *type,
                             const char *binary)
{
        g_autofree char *text = g_strdup_printf(
                "{\"description\": \"unit %s\", \"type\": \"%s\", \"binary\": \"%s\", "
                "\"tags\": [\"unit\"], \"x-future\": {\"a\": 1}}",
                type, type, binary);
        g_free(tmp_write(root, rel, text, 0644));
}

/* A fake backend: #!/bin/sh and body, in root/bin/name. */
static char *write_script(const char *root, const char *name, const char *body, int mode)
{
        g_autofree char *rel = g_build_filename("bin", name, NULL);
        g_autofree char *text = g_strdup_printf("#!/bin/sh\n%s\n", body);
        return tmp_write(root, rel, text, mode);
}

static void rm_rf(const char *path)
{
        GStatBuf st;

        if (g_lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
                g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
                const char *e;
                while (d && (e = g_dir_read_name(d))) {
                        g_autofree char *child = g_build_filename(path, e, NULL);
                        rm_rf(child);
                }
                g_assert_cmpint(g_rmdir(path), ==, 0);
        } else {
                g_assert_cmpint(g_unlink(path), ==, 0);
        }
}

static GPtrArray *scan_under(const char *root, const char *const *rels, guint timeout_ms)
{
        g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);
        for (; *rels; rels++)
                g_ptr_array_add(dirs, g_build_filename(root, *rels, NULL));
        g_ptr_array_add(dirs, NULL);
        return emu_interop_scan((const char *const *)dirs->pdata, timeout_ms);
}

static const EmuInteropBackend *nth(GPtrArray *backends, guint i)
{
        g_assert_cmpuint(i, <, backends->len);
        return g_ptr_array_index(backends, i);
}

/* One descriptor of type fs in d/, for a script with the given body; the scan's only entry. */
static EmuInteropBackend *probe_script(const char *body, guint timeout_ms, char **ret_binary)
{
        g_autofree char *root = tmp_root();
        g_autofree char *binary = write_script(root, "backend", body, 0755);
        write_descriptor(root, "d/50-unit.json", "fs", binary);
        const char *const rels[] = { "d", NULL };
        g_autoptr(GPtrArray) backends = scan_under(root, rels, timeout_ms);
        rm_rf(root);

        g_assert_cmpuint(backends->len, ==, 1);
        if (ret_binary)
                *ret_binary = g_steal_pointer(&binary);
        return g_ptr_array_steal_index(backends, 0);
}

static void assert_unusable(const EmuInteropBackend *b, const char *want)
{
        g_assert_nonnull(b->unavailable);
        g_test_message("%s: unavailable: %s", b->file, b->unavailable);
        g_assert_nonnull(strstr(b->unavailable, want));
        g_assert_null(strchr(b->unavailable, '\n'));
        g_assert_nonnull(b->features);
        g_assert_null(b->features[0]);
}

/* strcmp order, not readdir's and not a natural sort; other files and missing dirs ignored. */
static void test_order(void)
{
        g_autofree char *root = tmp_root();
        write_descriptor(root, "d/9-a.json", "fs", MISSING_BINARY);
        write_descriptor(root, "d/50-b.json", "gpu", MISSING_BINARY);
        write_descriptor(root, "d/10-z.json", "block", MISSING_BINARY);
        g_free(tmp_write(root, "d/README", "not a descriptor", 0644));
        g_free(tmp_write(root, "d/60-c.json.bak", "not a descriptor", 0644));
        const char *const rels[] = { "missing", "d", "also-missing", NULL };
        g_autoptr(GPtrArray) backends = scan_under(root, rels, 0);
        g_autofree char *origin = g_build_filename(root, "d", "10-z.json", NULL);
        rm_rf(root);

        g_assert_cmpuint(backends->len, ==, 3);
        g_assert_cmpstr(nth(backends, 0)->file, ==, "10-z.json");
        g_assert_cmpstr(nth(backends, 0)->origin, ==, origin);
        g_assert_cmpstr(nth(backends, 0)->type, ==, "block");
        g_assert_cmpstr(nth(backends, 1)->file, ==, "50-b.json");
        g_assert_cmpstr(nth(backends, 2)->file, ==, "9-a.json");

        const char *const none[] = { NULL };
        g_autoptr(GPtrArray) empty = emu_interop_scan(none, 0);
        g_assert_cmpuint(empty->len, ==, 0);
}

static void test_override(void)
{
        g_autofree char *root = tmp_root();
        write_descriptor(root, "sys/10-x.json", "fs", MISSING_BINARY);
        write_descriptor(root, "sys/20-y.json", "input", MISSING_BINARY);
        write_descriptor(root, "etc/10-x.json", "gpu", MISSING_BINARY);
        const char *const rels[] = { "sys", "etc", "user", NULL };
        g_autoptr(GPtrArray) backends = scan_under(root, rels, 0);
        g_autofree char *etc_x = g_build_filename(root, "etc", "10-x.json", NULL);
        g_autofree char *sys_y = g_build_filename(root, "sys", "20-y.json", NULL);
        rm_rf(root);

        g_assert_cmpuint(backends->len, ==, 2);
        g_assert_cmpstr(nth(backends, 0)->file, ==, "10-x.json");
        g_assert_cmpstr(nth(backends, 0)->origin, ==, etc_x);
        g_assert_cmpstr(nth(backends, 0)->type, ==, "gpu");
        g_assert_cmpstr(nth(backends, 0)->description, ==, "unit gpu");
        g_assert_cmpstr(nth(backends, 1)->origin, ==, sys_y);
        g_assert_cmpstr(nth(backends, 1)->type, ==, "input");
}

/* An empty file masks the name from earlier dirs; a later dir can bring it back. */
static void test_mask(void)
{
        g_autofree char *root = tmp_root();
        write_descriptor(root, "sys/10-x.json", "fs", MISSING_BINARY);
        g_free(tmp_write(root, "etc/10-x.json", "", 0644));
        g_free(tmp_write(root, "sys/20-y.json", "", 0644));
        write_descriptor(root, "etc/20-y.json", "gpu", MISSING_BINARY);
        write_descriptor(root, "sys/30-z.json", "block", MISSING_BINARY);
        write_descriptor(root, "sys/40-w.json", "input", MISSING_BINARY);
        g_autofree char *link = g_build_filename(root, "etc", "40-w.json", NULL);
        g_assert_cmpint(symlink("/dev/null", link), ==, 0);
        g_free(tmp_write(root, "etc/50-v.json", "", 0644));
        const char *const rels[] = { "sys", "etc", NULL };
        g_autoptr(GPtrArray) backends = scan_under(root, rels, 0);
        g_autofree char *etc_y = g_build_filename(root, "etc", "20-y.json", NULL);
        rm_rf(root);

        g_assert_cmpuint(backends->len, ==, 2);
        g_assert_cmpstr(nth(backends, 0)->file, ==, "20-y.json");
        g_assert_cmpstr(nth(backends, 0)->origin, ==, etc_y);
        g_assert_cmpstr(nth(backends, 1)->file, ==, "30-z.json");
}

static const struct {
        const char *file, *text, *want;
} malformed[] = {
        { "10-bad-json.json", "{\"type\": \"fs\",", "line 1" },
        { "11-not-object.json", "[\"fs\"]", "not a JSON object" },
        { "12-no-type.json", "{\"binary\": \"/bin/true\"}", "'type'" },
        { "13-type-number.json", "{\"type\": 42, \"binary\": \"/bin/true\"}", "'type'" },
        { "14-no-binary.json", "{\"type\": \"fs\"}", "'binary'" },
        { "15-relative.json", "{\"type\": \"fs\", \"binary\": \"usr/bin/true\"}", "'binary'" },
        { "16-whitespace.json", " \n", "line" },
};

/* Malformed files become unusable entries naming the file; the rest of the scan goes on. */
static void test_malformed(void)
{
        g_autofree char *root = tmp_root();
        for (size_t i = 0; i < G_N_ELEMENTS(malformed); i++) {
                g_autofree char *rel = g_build_filename("d", malformed[i].file, NULL);
                g_free(tmp_write(root, rel, malformed[i].text, 0644));
        }
        write_descriptor(root, "d/99-good.json", "fs", MISSING_BINARY);
        const char *const rels[] = { "d", NULL };
        g_autoptr(GPtrArray) backends = scan_under(root, rels, 0);
        g_autofree char *dir = g_build_filename(root, "d", NULL);
        rm_rf(root);

        g_assert_cmpuint(backends->len, ==, G_N_ELEMENTS(malformed) + 1);
        for (size_t i = 0; i < G_N_ELEMENTS(malformed); i++) {
                const EmuInteropBackend *b = nth(backends, i);
                g_autofree char *origin = g_build_filename(dir, malformed[i].file, NULL);
                g_assert_cmpstr(b->file, ==, malformed[i].file);
                g_assert_cmpstr(b->origin, ==, origin);
                g_assert_null(b->type);
                g_assert_null(b->binary);
                assert_unusable(b, malformed[i].want);
                g_assert_true(g_str_has_prefix(b->unavailable, origin));
        }
        g_assert_cmpstr(nth(backends, G_N_ELEMENTS(malformed))->type, ==, "fs");
}

static void test_not_installed(void)
{
        g_autofree char *root = tmp_root();
        write_descriptor(root, "d/50-gone.json", "fs", MISSING_BINARY);
        const char *const rels[] = { "d", NULL };
        g_autoptr(GPtrArray) backends = scan_under(root, rels, 0);
        rm_rf(root);

        g_assert_cmpuint(backends->len, ==, 1);
        const EmuInteropBackend *b = nth(backends, 0);
        g_assert_cmpstr(b->type, ==, "fs");
        g_assert_cmpstr(b->binary, ==, MISSING_BINARY);
        g_assert_cmpstr(b->description, ==, "unit fs");
        assert_unusable(b, MISSING_BINARY " is not installed");
}

static void test_not_executable(void)
{
        g_autofree char *root = tmp_root();
        g_autofree char *binary = write_script(root, "backend", "echo '{\"type\": \"fs\"}'", 0644);
        write_descriptor(root, "d/50-unit.json", "fs", binary);
        const char *const rels[] = { "d", NULL };
        g_autoptr(GPtrArray) backends = scan_under(root, rels, 0);
        rm_rf(root);

        g_autofree char *want = g_strdup_printf("%s is not executable", binary);
        assert_unusable(nth(backends, 0), want);
}

static void test_features(void)
{
        int fds = emu_count_open_fds();
        g_autoptr(EmuInteropBackend) b = probe_script(
                "echo 'warning: noise' >&2\n"
                "echo '{\"type\": \"fs\", \"features\": [\"migrate-precopy\", "
                "\"separate-options\"], \"x-future\": true}'",
                0, NULL);

        g_assert_null(b->unavailable);
        g_assert_cmpstr(b->type, ==, "fs");
        g_assert_cmpuint(g_strv_length(b->features), ==, 2);
        g_assert_cmpstr(b->features[0], ==, "migrate-precopy");
        g_assert_cmpstr(b->features[1], ==, "separate-options");
        g_assert_cmpint(emu_count_open_fds(), ==, fds);
}

static void test_no_features(void)
{
        g_autoptr(EmuInteropBackend) b = probe_script("echo '{\"type\": \"fs\"}'", 0, NULL);

        g_assert_null(b->unavailable);
        g_assert_nonnull(b->features);
        g_assert_null(b->features[0]);
}

/* The probe gets no fds but its three, with stdin and stderr on /dev/null. */
static void test_probe_env(void)
{
        int leak = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
        g_assert_cmpint(leak, >=, 3);
        g_autofree char *body = g_strdup_printf(
                "f=fd-closed; [ -e /proc/self/fd/%d ] && f=fd-leaked\n"
                "echo \"{\\\"type\\\": \\\"fs\\\", \\\"features\\\": [\\\"$f\\\", "
                "\\\"stdin=$(readlink /proc/self/fd/0)\\\", "
                "\\\"stderr=$(readlink /proc/self/fd/2)\\\"]}\"",
                leak);
        g_autoptr(EmuInteropBackend) b = probe_script(body, 0, NULL);
        close(leak);

        g_assert_null(b->unavailable);
        g_assert_cmpuint(g_strv_length(b->features), ==, 3);
        g_assert_cmpstr(b->features[0], ==, "fd-closed");
        g_assert_cmpstr(b->features[1], ==, "stdin=/dev/null");
        g_assert_cmpstr(b->features[2], ==, "stderr=/dev/null");
}

static const struct {
        const char *name, *body, *want;
} probe_cases[] = {
        { "garbage", "echo 'hello, world'", "--print-capabilities: invalid JSON" },
        { "empty", "true", "--print-capabilities: invalid JSON" },
        { "not-object", "echo '[\"fs\"]'", "not a JSON object" },
        { "no-type", "echo '{\"features\": []}'", "no 'type'" },
        { "type-mismatch", "echo '{\"type\": \"gpu\", \"features\": []}'",
          "type 'gpu' differs from 'fs'" },
        { "features-not-list", "echo '{\"type\": \"fs\", \"features\": \"a\"}'", "'features'" },
        { "features-not-strings", "echo '{\"type\": \"fs\", \"features\": [1]}'", "'features'" },
        { "exit-status", "echo '{\"type\": \"fs\"}'; exit 3", "exited with status 3" },
        { "killed", "kill -9 $$", "killed by signal 9" },
        { "too-much-output", "head -c 100000 /dev/zero", "more than 65536 bytes" },
};

static void test_probe_bad(gconstpointer data)
{
        const size_t i = GPOINTER_TO_SIZE(data);
        g_autofree char *binary = NULL;
        g_autoptr(EmuInteropBackend) b = probe_script(probe_cases[i].body, 0, &binary);

        g_assert_cmpstr(b->type, ==, "fs");
        assert_unusable(b, probe_cases[i].want);
        g_assert_true(g_str_has_prefix(b->unavailable, binary));
}

/* Dead means gone or a zombie of someone else's (a reparented grandchild); SIGKILL is async. */
static bool process_dies(pid_t pid)
{
        for (int i = 0; i < 200; i++) {
                g_autofree char *path = g_strdup_printf("/proc/%d/stat", pid);
                g_autofree char *stat = NULL;
                if (!g_file_get_contents(path, &stat, NULL, NULL))
                        return true;
                const char *state = strrchr(stat, ')');
                if (state && state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X'))
                        return true;
                g_usleep(10000);
        }
        return false;
}

/*
 * A backend that hangs is killed at the deadline and reaped before the scan
 * returns: no zombie, no child left. Its pid is written to a file, since the
 * scan does not expose it.
 */
static void check_timeout(const char *script)
{
        g_autofree char *root = tmp_root();
        g_autofree char *pidfile = g_build_filename(root, "pid", NULL);
        g_autofree char *body = g_strdup_printf("pidfile='%s'\n%s", pidfile, script);
        g_autofree char *binary = write_script(root, "backend", body, 0755);
        write_descriptor(root, "d/50-unit.json", "fs", binary);
        const char *const rels[] = { "d", NULL };

        gint64 start = g_get_monotonic_time();
        g_autoptr(GPtrArray) backends = scan_under(root, rels, 300);
        gint64 elapsed_ms = (g_get_monotonic_time() - start) / 1000;
        g_autofree char *pidtext = NULL;
        gboolean have_pid = g_file_get_contents(pidfile, &pidtext, NULL, NULL);
        rm_rf(root);

        g_test_message("scan took %" G_GINT64_FORMAT " ms", elapsed_ms);
        g_assert_cmpint(elapsed_ms, >=, 300);
        g_assert_cmpint(elapsed_ms, <, 3000);
        g_autofree char *want = g_strdup_printf("%s --print-capabilities: timed out after 300 ms",
                                                binary);
        g_assert_cmpstr(nth(backends, 0)->unavailable, ==, want);

        g_assert_true(have_pid);
        pid_t pid = (pid_t)g_ascii_strtoll(pidtext, NULL, 10);
        g_assert_cmpint(pid, >, 1);
        g_assert_true(process_dies(pid));
        /* Reaped, not just killed: the test process has no child left, zombie or not. */
        int r = waitpid(-1, NULL, WNOHANG);
        int saved_errno = errno;
        g_assert_cmpint(r, ==, -1);
        g_assert_cmpint(saved_errno, ==, ECHILD);
}

static void test_timeout(void)
{
        check_timeout("echo $$ >\"$pidfile\"\nexec sleep 10");
}

/* Closing stdout is not exiting: the deadline covers the wait for the exit as well. */
static void test_timeout_after_eof(void)
{
        check_timeout("exec >&-\necho $$ >\"$pidfile\"\nexec sleep 10");
}

/* A wrapper's own children die with it (the probe runs in its own process group). */
static void test_timeout_grandchild(void)
{
        check_timeout("sleep 10 &\necho $! >\"$pidfile\"\nwait");
}

static void test_default_dirs(void)
{
        g_autofree char *xdg = g_strdup(g_getenv("XDG_CONFIG_HOME"));
        g_autofree char *home = g_strdup(g_getenv("HOME"));

        g_setenv("XDG_CONFIG_HOME", "/unit/xdg", TRUE);
        g_setenv("HOME", "/unit/home", TRUE);
        g_auto(GStrv) with_xdg = emu_interop_default_dirs();
        g_unsetenv("XDG_CONFIG_HOME");
        g_auto(GStrv) with_home = emu_interop_default_dirs();
        g_setenv("XDG_CONFIG_HOME", "relative/xdg", TRUE);
        g_auto(GStrv) relative_xdg = emu_interop_default_dirs();
        g_unsetenv("XDG_CONFIG_HOME");
        g_unsetenv("HOME");
        g_auto(GStrv) neither = emu_interop_default_dirs();

        if (xdg)
                g_setenv("XDG_CONFIG_HOME", xdg, TRUE);
        if (home)
                g_setenv("HOME", home, TRUE);

        const char *const want_xdg[] = { "/usr/share/qemu/vhost-user", "/etc/qemu/vhost-user",
                                         "/unit/xdg/qemu/vhost-user", NULL };
        const char *const want_home[] = { "/usr/share/qemu/vhost-user", "/etc/qemu/vhost-user",
                                          "/unit/home/.config/qemu/vhost-user", NULL };
        const char *const want_neither[] = { "/usr/share/qemu/vhost-user",
                                             "/etc/qemu/vhost-user", NULL };
        g_assert_cmpstrv(with_xdg, want_xdg);
        g_assert_cmpstrv(with_home, want_home);
        g_assert_cmpstrv(relative_xdg, want_home);
        g_assert_cmpstrv(neither, want_neither);
}

/* The host's own virtiofsd, as Debian's qemu-system-common installs it. */
static void test_system_virtiofsd(void)
{
        const char *dir = "/usr/share/qemu/vhost-user";
        const char *file = "/usr/share/qemu/vhost-user/50-qemu-virtiofsd.json";
        if (!g_file_test(file, G_FILE_TEST_EXISTS)) {
                g_autofree char *why = g_strdup_printf("%s is not installed", file);
                g_test_skip(why);
                return;
        }
        const char *const dirs[] = { dir, NULL };
        g_autoptr(GPtrArray) backends = emu_interop_scan(dirs, 0);

        const EmuInteropBackend *b = NULL;
        for (guint i = 0; i < backends->len; i++)
                if (strcmp(nth(backends, i)->file, "50-qemu-virtiofsd.json") == 0)
                        b = nth(backends, i);
        g_assert_nonnull(b);
        g_test_message("%s: unavailable: %s", b->origin, b->unavailable ?: "(no)");
        g_assert_cmpstr(b->origin, ==, file);
        g_assert_cmpstr(b->type, ==, "fs");
        g_assert_cmpstr(b->binary, ==, "/usr/lib/qemu/virtiofsd");
        g_assert_null(b->unavailable);
        g_assert_nonnull(b->features);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/interop/order", test_order);
        g_test_add_func("/interop/override", test_override);
        g_test_add_func("/interop/mask", test_mask);
        g_test_add_func("/interop/malformed", test_malformed);
        g_test_add_func("/interop/not-installed", test_not_installed);
        g_test_add_func("/interop/not-executable", test_not_executable);
        g_test_add_func("/interop/probe/features", test_features);
        g_test_add_func("/interop/probe/no-features", test_no_features);
        g_test_add_func("/interop/probe/env", test_probe_env);
        for (size_t i = 0; i < G_N_ELEMENTS(probe_cases); i++) {
                g_autofree char *path = g_strdup_printf("/interop/probe/bad/%s",
                                                        probe_cases[i].name);
                g_test_add_data_func(path, GSIZE_TO_POINTER(i), test_probe_bad);
        }
        g_test_add_func("/interop/probe/timeout", test_timeout);
        g_test_add_func("/interop/probe/timeout-after-eof", test_timeout_after_eof);
        g_test_add_func("/interop/probe/timeout-grandchild", test_timeout_grandchild);
        g_test_add_func("/interop/default-dirs", test_default_dirs);
        g_test_add_func("/interop/system-virtiofsd", test_system_virtiofsd);
        return g_test_run();
}
