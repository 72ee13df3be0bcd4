/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-config: emud.conf. A mistake in it must stop emud at start-up with a
 * message that names the file and the key, never be skipped silently.
 */
#include <glib/gstdio.h>
#include <string.h>

#include "config.h"
#include "emu-error.h"
#include "emud-build.h"

/*
 * Each config text goes to its own g_file_open_tmp() file, which is removed
 * straight after loading: a failed assertion aborts the test, and nothing is
 * left behind in /tmp when it does.
 */
typedef struct {
        char *path; /* the last file loaded, for matching error messages */
        EmudConfig config;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
        emud_config_init(&f->config);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
        emud_config_deinit(&f->config);
        g_free(f->path);
}

static bool load_text(Fixture *f, const char *text, GError **error)
{
        g_autoptr(GError) err = NULL;
        int fd;

        g_clear_pointer(&f->path, g_free);
        fd = g_file_open_tmp("emud-unit-XXXXXX.conf", &f->path, &err);
        g_assert_no_error(err);
        g_assert_true(g_close(fd, &err));
        /* Load and remove the file first; only then check how writing it went. */
        bool written = g_file_set_contents(f->path, text, -1, &err);
        bool ok = written && emud_config_load(&f->config, f->path, true, error);
        g_assert_cmpint(g_unlink(f->path), ==, 0);
        g_assert_no_error(err);
        return ok;
}

static void assert_defaults(const EmudConfig *c)
{
        g_assert_cmpstr(c->runtime_dir, ==, "/run/emud");
        g_assert_cmpstr(c->kinds_dir, ==, EMUD_KINDS_DIR);
        g_assert_cmpuint(c->qmp_timeout_ms, ==, 5000);
        g_assert_cmpuint(c->ready_timeout_ms, ==, 10000);
        g_assert_cmpuint(c->unplug_timeout_ms, ==, 10000);
        g_assert_cmpuint(c->stop_grace_ms, ==, 5000);
}

/* Load text that must be refused, with a message that names the file and the fragment. */
static void assert_refused(Fixture *f, const char *text, const char *fragment)
{
        g_autoptr(GError) err = NULL;
        bool ok = load_text(f, text, &err);

        if (ok)
                g_test_message("accepted, %s", err ? err->message : "no error set");
        g_assert_false(ok);
        g_assert_nonnull(err);
        if (!err)
                return;
        g_test_message("error: %s", err->message);
        g_assert_nonnull(strstr(err->message, f->path));
        if (fragment)
                g_assert_nonnull(strstr(err->message, fragment));
}

static void test_defaults(Fixture *f, gconstpointer data)
{
        assert_defaults(&f->config);
        g_assert_true(g_path_is_absolute(f->config.kinds_dir));

        /* deinit leaves nothing dangling, so a second deinit is harmless. */
        EmudConfig c;
        emud_config_init(&c);
        emud_config_deinit(&c);
        g_assert_null(c.runtime_dir);
        g_assert_null(c.kinds_dir);
        emud_config_deinit(&c);
}

static void test_every_key(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) err = NULL;

        g_assert_true(load_text(f,
                                "# all of them\n"
                                "[emud]\n"
                                "runtime-dir=/tmp/emud-run\n"
                                "emulators-dir = /opt/emud/kinds\n"
                                "qmp-timeout-ms=1\n"
                                "ready-timeout-ms=2000\n"
                                "unplug-timeout-ms=3000\n"
                                "stop-grace-ms=3600000\n",
                                &err));
        g_assert_no_error(err);
        g_assert_cmpstr(f->config.runtime_dir, ==, "/tmp/emud-run");
        g_assert_cmpstr(f->config.kinds_dir, ==, "/opt/emud/kinds");
        g_assert_cmpuint(f->config.qmp_timeout_ms, ==, 1);
        g_assert_cmpuint(f->config.ready_timeout_ms, ==, 2000);
        g_assert_cmpuint(f->config.unplug_timeout_ms, ==, 3000);
        g_assert_cmpuint(f->config.stop_grace_ms, ==, 3600000);
}

static void test_some_keys(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) err = NULL;

        g_assert_true(load_text(f, "[emud]\nready-timeout-ms=42\n", &err));
        g_assert_no_error(err);
        g_assert_cmpuint(f->config.ready_timeout_ms, ==, 42);
        f->config.ready_timeout_ms = 10000;
        assert_defaults(&f->config);
}

static void test_empty_file(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) err = NULL;

        g_assert_true(load_text(f, "# nothing set\n", &err));
        g_assert_no_error(err);
        assert_defaults(&f->config);

        g_assert_true(load_text(f, "[emud]\n", &err));
        g_assert_no_error(err);
        assert_defaults(&f->config);
}

/* A second file overrides the first, as the packaged default then the admin's. */
static void test_load_twice(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) err = NULL;

        g_assert_true(load_text(f, "[emud]\nruntime-dir=/tmp/one\nstop-grace-ms=7\n", &err));
        g_assert_true(load_text(f, "[emud]\nruntime-dir=/tmp/two\n", &err));
        g_assert_no_error(err);
        g_assert_cmpstr(f->config.runtime_dir, ==, "/tmp/two");
        g_assert_cmpuint(f->config.stop_grace_ms, ==, 7);
}

static void test_unknown_key(Fixture *f, gconstpointer data)
{
        assert_refused(f, "[emud]\nqmp-timeout-ms=100\nqmp-timout-ms=100\n", "qmp-timout-ms");
        assert_refused(f, "[emud]\nruntime_dir=/run/x\n", "runtime_dir");
}

static void test_unknown_group(Fixture *f, gconstpointer data)
{
        assert_refused(f, "[emud]\nqmp-timeout-ms=100\n[daemon]\nqmp-timeout-ms=100\n",
                       "daemon");
        assert_refused(f, "[Emud]\nqmp-timeout-ms=100\n", "Emud");
}

static void test_bad_numbers(Fixture *f, gconstpointer data)
{
        static const char *const keys[] = { "qmp-timeout-ms", "ready-timeout-ms",
                                            "unplug-timeout-ms", "stop-grace-ms" };
        static const char *const values[] = { "0",       "abc", "99999999999", "-1", "",
                                              "3600001", "1.5", "10ms",        "0x10" };
        for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
                for (size_t v = 0; v < G_N_ELEMENTS(values); v++) {
                        g_autofree char *text =
                                g_strdup_printf("[emud]\n%s=%s\n", keys[k], values[v]);
                        assert_refused(f, text, keys[k]);
                }
        }
}

static void test_relative_dirs(Fixture *f, gconstpointer data)
{
        assert_refused(f, "[emud]\nruntime-dir=run/emud\n", "runtime-dir");
        assert_refused(f, "[emud]\nruntime-dir=\n", "runtime-dir");
        assert_refused(f, "[emud]\nemulators-dir=./kinds\n", "emulators-dir");
}

/*
 * Values GKeyFile itself cannot interpret. For a bad escape it returns a
 * string and sets the error anyway, so the caller has to look at the error.
 */
static void test_bad_escape(Fixture *f, gconstpointer data)
{
        assert_refused(f, "[emud]\nruntime-dir=/run/a\\qb\n", "runtime-dir");
        assert_refused(f, "[emud]\nemulators-dir=/usr/share/emud\\\n", "emulators-dir");
}

/* The admin needs the file named here too, as for every other bad value. */
static void test_not_utf8(Fixture *f, gconstpointer data)
{
        assert_refused(f, "[emud]\nruntime-dir=/run/\xff\n", "runtime-dir");
}

static void test_not_a_keyfile(Fixture *f, gconstpointer data)
{
        assert_refused(f, "qmp-timeout-ms=100\n", NULL);
        assert_refused(f, "[emud\n", NULL);
}

/* A directory that does not exist, so nothing can be there by accident. */
#define ABSENT "/nonexistent-emud-unit/emud.conf"

static void test_missing_optional(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) err = NULL;

        g_assert_true(emud_config_load(&f->config, ABSENT, false, &err));
        g_assert_no_error(err);
        assert_defaults(&f->config);
}

static void test_missing_required(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) err = NULL;

        g_assert_false(emud_config_load(&f->config, ABSENT, true, &err));
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(err->message, ABSENT));
        assert_defaults(&f->config);
}

/* Not being able to read a file that exists is an error even when it is optional. */
static void test_unreadable_optional(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) err = NULL;
        const char *dir = g_get_tmp_dir();

        g_assert_false(emud_config_load(&f->config, dir, false, &err));
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(err->message, dir));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        /* One wrong config rule must not hide the others: every case runs and reports. */
        g_test_set_nonfatal_assertions();
#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("/config/defaults", test_defaults);
        ADD("/config/every-key", test_every_key);
        ADD("/config/some-keys", test_some_keys);
        ADD("/config/empty-file", test_empty_file);
        ADD("/config/load-twice", test_load_twice);
        ADD("/config/unknown-key", test_unknown_key);
        ADD("/config/unknown-group", test_unknown_group);
        ADD("/config/bad-numbers", test_bad_numbers);
        ADD("/config/relative-dirs", test_relative_dirs);
        ADD("/config/not-a-keyfile", test_not_a_keyfile);
        ADD("/config/bad-escape", test_bad_escape);
        ADD("/config/not-utf8", test_not_utf8);
        ADD("/config/missing-optional", test_missing_optional);
        ADD("/config/missing-required", test_missing_required);
        ADD("/config/unreadable-optional", test_unreadable_optional);
#undef ADD
        return g_test_run();
}
