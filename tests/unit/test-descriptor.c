/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-descriptor: the shipped vhost-user-blk descriptor and the plans
 * rendered from it. The argv is compared element by element because a
 * single wrong character in a QEMU option string is a different disk.
 */
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "descriptor.h"
#include "emu-error.h"
#include "emu-util.h"

typedef struct {
        char *dir;      /* scratch directory, removed in teardown */
        char *image;    /* an empty regular file whose name has a comma */
        char *escaped;  /* the same path with the comma doubled, as QEMU needs it */
        char *subdir;   /* a directory, which is not a valid image */
        EmuKind *kind;  /* emulators/vhost-user-blk.json from the source tree */
} Fixture;

/* meson passes the source tree, so the test reads the descriptor that is shipped. */
static char *shipped_descriptor(void)
{
        const char *root = g_getenv("EMUD_SOURCE_ROOT");
        g_assert_nonnull(root);
        return g_build_filename(root, "emulators", "vhost-user-blk.json", NULL);
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) err = NULL;
        g_autofree char *path = shipped_descriptor();

        f->dir = g_dir_make_tmp("emud-unit-XXXXXX", &err);
        g_assert_no_error(err);
        f->image = g_build_filename(f->dir, "disk,1.img", NULL);
        f->escaped = g_build_filename(f->dir, "disk,,1.img", NULL);
        g_file_set_contents(f->image, "", 0, &err);
        g_assert_no_error(err);
        f->subdir = g_build_filename(f->dir, "adir", NULL);
        g_assert_cmpint(g_mkdir(f->subdir, 0700), ==, 0);

        f->kind = emu_kind_load_file(path, &err);
        g_assert_no_error(err);
        g_assert_nonnull(f->kind);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
        g_assert_cmpint(g_unlink(f->image), ==, 0);
        g_assert_cmpint(g_rmdir(f->subdir), ==, 0);
        g_assert_cmpint(g_rmdir(f->dir), ==, 0);
        emu_kind_unref(f->kind);
        g_free(f->dir);
        g_free(f->image);
        g_free(f->escaped);
        g_free(f->subdir);
}

/* Name, value, name, value, ..., NULL. */
static GHashTable *options_new(const char *first, ...) G_GNUC_NULL_TERMINATED;
static GHashTable *options_new(const char *first, ...)
{
        GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        va_list ap;

        va_start(ap, first);
        for (const char *k = first; k; k = va_arg(ap, const char *))
                g_hash_table_insert(t, g_strdup(k), g_strdup(va_arg(ap, const char *)));
        va_end(ap);
        return t;
}

static void assert_argv(char **got, const char *const *want)
{
        g_assert_nonnull(got);
        g_assert_cmpuint(g_strv_length(got), ==, g_strv_length((char **)want));
        for (size_t i = 0; want[i]; i++)
                g_assert_cmpstr(got[i], ==, want[i]);
}

/* Render a plan that must fail, and check the error code the caller would see. */
static void assert_plan_fails(const Fixture *f, GHashTable *options, int code)
{
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPlan) p = emu_plan_new(f->kind, options, &err);

        g_assert_null(p);
        g_assert_error(err, EMU_ERROR, code);
        g_test_message("error: %s", err->message);
}

static void test_shipped_kind(Fixture *f, gconstpointer data)
{
        const EmuKind *k = f->kind;
        g_autofree char *path = shipped_descriptor();

        g_assert_cmpstr(k->name, ==, "vhost-user-blk");
        g_assert_cmpstr(k->origin, ==, path);
        g_assert_cmpstr(k->binary, ==, "/usr/bin/qemu-storage-daemon");
        g_assert_cmpuint(k->n_fds, ==, 2);
        g_assert_cmpint(k->fds[0], ==, EMU_FD_MONITOR);
        g_assert_cmpint(k->fds[1], ==, EMU_FD_LISTEN);
        g_assert_cmpstr(emu_fd_role_name(EMU_FD_MONITOR), ==, "monitor");
        g_assert_cmpstr(emu_fd_role_name(EMU_FD_LISTEN), ==, "listen");
        g_assert_cmpint(k->readiness, ==, EMU_READY_QMP_GREETING);
        g_assert_cmpstr(k->driver, ==, "vhost-user-blk-pci");
        g_assert_cmpstr(k->chardev_property, ==, "chardev");
        g_assert_cmpuint(k->options->len, ==, 4);

        const EmuOptionSpec *image = emu_kind_find_option(k, "image");
        g_assert_nonnull(image);
        g_assert_cmpint(image->type, ==, EMU_OPT_PATH);
        g_assert_true(image->required);
        g_assert_cmpstr(image->writable_unless, ==, "readonly");

        const EmuOptionSpec *format = emu_kind_find_option(k, "format");
        g_assert_nonnull(format);
        g_assert_cmpint(format->type, ==, EMU_OPT_ENUM);
        g_assert_cmpstr(format->default_value, ==, "raw");
        assert_argv(format->values, (const char *const[]){ "raw", "qcow2", NULL });

        const EmuOptionSpec *nq = emu_kind_find_option(k, "num-queues");
        g_assert_nonnull(nq);
        g_assert_cmpint(nq->type, ==, EMU_OPT_UINT);
        g_assert_cmpuint(nq->min, ==, 1);
        g_assert_cmpuint(nq->max, ==, 64);

        g_assert_null(emu_kind_find_option(k, "nope"));
}

static void test_plan_defaults(Fixture *f, gconstpointer data)
{
        g_autoptr(GHashTable) opts = options_new("image", f->image, NULL);
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPlan) p = emu_plan_new(f->kind, opts, &err);
        g_autofree char *file_arg = g_strdup_printf(
                "driver=file,node-name=file0,filename=%s,read-only=off", f->escaped);

        g_assert_no_error(err);
        assert_argv(p->argv, (const char *const[]){
                "/usr/bin/qemu-storage-daemon",
                "--chardev", "socket,id=mon0,fd=3,server=on,wait=off",
                "--monitor", "chardev=mon0",
                "--blockdev", file_arg,
                "--blockdev", "driver=raw,node-name=disk0,file=file0,read-only=off",
                "--export", "type=vhost-user-blk,id=export0,node-name=disk0,writable=on,"
                            "num-queues=1,addr.type=fd,addr.str=4",
                NULL });

        /* Every option has a value afterwards; the path itself is kept unescaped. */
        g_assert_cmpuint(g_hash_table_size(p->values), ==, 4);
        g_assert_cmpstr(g_hash_table_lookup(p->values, "image"), ==, f->image);
        g_assert_cmpstr(g_hash_table_lookup(p->values, "format"), ==, "raw");
        g_assert_cmpstr(g_hash_table_lookup(p->values, "readonly"), ==, "off");
        g_assert_cmpstr(g_hash_table_lookup(p->values, "num-queues"), ==, "1");

        g_assert_true(json_is_object(p->device_args));
        g_assert_cmpuint(json_object_size(p->device_args), ==, 2);
        g_assert_cmpstr(json_string_value(json_object_get(p->device_args, "driver")), ==,
                        "vhost-user-blk-pci");
        json_t *nq = json_object_get(p->device_args, "num-queues");
        g_assert_true(json_is_integer(nq));
        g_assert_cmpint(json_integer_value(nq), ==, 1);
}

static void test_plan_readonly(Fixture *f, gconstpointer data)
{
        g_autoptr(GHashTable) opts = options_new("image", f->image, "readonly", "on",
                                                 "format", "qcow2", "num-queues", "8", NULL);
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPlan) p = emu_plan_new(f->kind, opts, &err);
        g_autofree char *file_arg = g_strdup_printf(
                "driver=file,node-name=file0,filename=%s,read-only=on", f->escaped);

        g_assert_no_error(err);
        assert_argv(p->argv, (const char *const[]){
                "/usr/bin/qemu-storage-daemon",
                "--chardev", "socket,id=mon0,fd=3,server=on,wait=off",
                "--monitor", "chardev=mon0",
                "--blockdev", file_arg,
                "--blockdev", "driver=qcow2,node-name=disk0,file=file0,read-only=on",
                "--export", "type=vhost-user-blk,id=export0,node-name=disk0,writable=off,"
                            "num-queues=8,addr.type=fd,addr.str=4",
                NULL });

        /* A JSON string "8" would make device_add fail; it has to be the integer. */
        g_autoptr(json_t) want = json_pack("{s:s, s:i}", "driver", "vhost-user-blk-pci",
                                           "num-queues", 8);
        g_assert_true(json_equal(p->device_args, want));
        g_assert_true(json_is_integer(json_object_get(p->device_args, "num-queues")));
}

static void test_bool_spellings(Fixture *f, gconstpointer data)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "on", "on" }, { "true", "on" }, { "yes", "on" }, { "1", "on" },
                { "off", "off" }, { "false", "off" }, { "no", "off" }, { "0", "off" },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GHashTable) opts = options_new("image", f->image, "readonly",
                                                         cases[i].in, NULL);
                g_autoptr(GError) err = NULL;
                g_autoptr(EmuPlan) p = emu_plan_new(f->kind, opts, &err);
                g_autofree char *want = g_strdup_printf(
                        "driver=raw,node-name=disk0,file=file0,read-only=%s", cases[i].out);

                g_test_message("readonly=%s", cases[i].in);
                g_assert_no_error(err);
                g_assert_cmpstr(g_hash_table_lookup(p->values, "readonly"), ==, cases[i].out);
                g_assert_cmpstr(p->argv[8], ==, want);
                g_assert_true(g_str_has_prefix(
                        p->argv[10], strcmp(cases[i].out, "on") == 0
                                             ? "type=vhost-user-blk,id=export0,node-name=disk0,"
                                               "writable=off,"
                                             : "type=vhost-user-blk,id=export0,node-name=disk0,"
                                               "writable=on,"));
        }
}

static void test_uint_normalised(Fixture *f, gconstpointer data)
{
        g_autoptr(GHashTable) opts = options_new("image", f->image, "num-queues", "064", NULL);
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPlan) p = emu_plan_new(f->kind, opts, &err);

        g_assert_no_error(err);
        g_assert_cmpstr(g_hash_table_lookup(p->values, "num-queues"), ==, "64");
        g_assert_nonnull(strstr(p->argv[10], ",num-queues=64,"));
        g_assert_cmpint(json_integer_value(json_object_get(p->device_args, "num-queues")), ==,
                        64);
}

static void test_unknown_option(Fixture *f, gconstpointer data)
{
        g_autoptr(GHashTable) opts = options_new("image", f->image, "cache", "none", NULL);
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPlan) p = emu_plan_new(f->kind, opts, &err);

        g_assert_null(p);
        g_assert_error(err, EMU_ERROR, EMU_ERROR_UNKNOWN_OPTION);
        g_assert_nonnull(strstr(err->message, "'cache'"));
}

static void test_missing_image(Fixture *f, gconstpointer data)
{
        g_autoptr(GHashTable) none = options_new(NULL, NULL);
        g_autoptr(GHashTable) no_image = options_new("readonly", "on", "format", "raw", NULL);

        assert_plan_fails(f, none, EMU_ERROR_MISSING_OPTION);
        assert_plan_fails(f, no_image, EMU_ERROR_MISSING_OPTION);
}

static void test_invalid_values(Fixture *f, gconstpointer data)
{
        static const char *const cases[][2] = {
                { "format", "vmdk" },     { "format", "" },        { "format", "RAW" },
                { "readonly", "maybe" },  { "readonly", "" },      { "readonly", "2" },
                { "num-queues", "0" },    { "num-queues", "65" },  { "num-queues", "abc" },
                { "num-queues", "-1" },   { "num-queues", "" },    { "num-queues", "1x" },
                { "num-queues", " 1" },   { "num-queues", "0x10" },
                { "num-queues", "18446744073709551617" },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GHashTable) opts =
                        options_new("image", f->image, cases[i][0], cases[i][1], NULL);
                g_test_message("%s=%s", cases[i][0], cases[i][1]);
                assert_plan_fails(f, opts, EMU_ERROR_INVALID_OPTION);
        }
}

/* A line break would let a value smuggle a second line into logs or QMP text. */
static void test_line_breaks(Fixture *f, gconstpointer data)
{
        g_autofree char *nl_image = g_strconcat(f->image, "\n", NULL);
        static const char *const cases[][2] = {
                { "format", "raw\n" }, { "format", "raw\r" }, { "readonly", "on\n" },
                { "num-queues", "1\n2" },
        };
        g_autoptr(GHashTable) opts = options_new("image", nl_image, NULL);

        assert_plan_fails(f, opts, EMU_ERROR_INVALID_OPTION);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GHashTable) o =
                        options_new("image", f->image, cases[i][0], cases[i][1], NULL);
                assert_plan_fails(f, o, EMU_ERROR_INVALID_OPTION);
        }
}

static void test_bad_paths(Fixture *f, gconstpointer data)
{
        g_autofree char *missing = g_build_filename(f->dir, "missing.img", NULL);
        g_autofree char *relative = g_path_get_basename(f->image);
        g_autofree char *dot_relative = g_strconcat("./", relative, NULL);
        g_autofree char *cwd = g_get_current_dir();
        const char *const paths[] = { relative, dot_relative, missing, f->subdir };

        /*
         * From inside the fixture directory the relative names do exist, so
         * only the rule "absolute paths only" can refuse them: emud's cwd is
         * not the client's.
         */
        g_assert_cmpint(g_chdir(f->dir), ==, 0);
        for (size_t i = 0; i < G_N_ELEMENTS(paths); i++) {
                g_autoptr(GHashTable) rw = options_new("image", paths[i], NULL);
                g_autoptr(GHashTable) ro = options_new("image", paths[i], "readonly", "on", NULL);

                /* Both the read-write and the read-only open must refuse each of them. */
                g_test_message("image=%s", paths[i]);
                assert_plan_fails(f, rw, EMU_ERROR_BAD_PATH);
                assert_plan_fails(f, ro, EMU_ERROR_BAD_PATH);
        }
        g_assert_cmpint(g_chdir(cwd), ==, 0);
}

/* g_file_open_tmp() gives an image outside the fixture directory, as a user would have. */
static void test_tmp_image(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) err = NULL;
        g_autofree char *path = NULL;
        emu_autofd fd = g_file_open_tmp("emud-unit-XXXXXX.img", &path, &err);

        g_assert_no_error(err);
        g_assert_cmpint(fd, >=, 0);

        g_autoptr(GHashTable) opts = options_new("image", path, "readonly", "yes", NULL);
        g_autoptr(EmuPlan) p = emu_plan_new(f->kind, opts, &err);
        g_assert_cmpint(g_unlink(path), ==, 0);
        g_assert_no_error(err);
        g_assert_cmpstr(g_hash_table_lookup(p->values, "image"), ==, path);
}

/*
 * A FIFO is not an image, and checking that must not wait for a writer:
 * emud would hang on any client who names one. The check runs in a GTest
 * subprocess, so a hang is a failure after two seconds rather than a stuck
 * suite, and the parent removes the FIFO whatever happened.
 */
static void test_fifo_does_not_block(void)
{
        if (g_test_subprocess()) {
                g_autoptr(GError) err = NULL;
                g_autofree char *descriptor = shipped_descriptor();
                g_autoptr(EmuKind) kind = emu_kind_load_file(descriptor, &err);
                g_assert_no_error(err);
                g_autoptr(GHashTable) opts = options_new("image", g_getenv("EMUD_UNIT_FIFO"),
                                                         "readonly", "on", NULL);
                g_autoptr(EmuPlan) p = emu_plan_new(kind, opts, &err);
                g_assert_null(p);
                g_assert_error(err, EMU_ERROR, EMU_ERROR_BAD_PATH);
                return;
        }

        g_autoptr(GError) err = NULL;
        g_autofree char *dir = g_dir_make_tmp("emud-unit-fifo-XXXXXX", &err);
        g_assert_no_error(err);
        g_autofree char *fifo = g_build_filename(dir, "fifo", NULL);
        int made = mkfifo(fifo, 0600);
        if (made == 0) {
                g_setenv("EMUD_UNIT_FIFO", fifo, TRUE);
                g_test_trap_subprocess(NULL, 2 * G_USEC_PER_SEC,
                                       G_TEST_SUBPROCESS_INHERIT_STDERR);
                g_unsetenv("EMUD_UNIT_FIFO");
                g_unlink(fifo);
        }
        g_rmdir(dir);
        g_assert_cmpint(made, ==, 0);
        if (g_test_trap_reached_timeout())
                g_test_message("emu_plan_new() blocked in open() on a FIFO");
        g_assert_false(g_test_trap_reached_timeout());
        g_test_trap_assert_passed();
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("/descriptor/shipped-kind", test_shipped_kind);
        ADD("/descriptor/plan/defaults", test_plan_defaults);
        ADD("/descriptor/plan/readonly", test_plan_readonly);
        ADD("/descriptor/plan/bool-spellings", test_bool_spellings);
        ADD("/descriptor/plan/uint-normalised", test_uint_normalised);
        ADD("/descriptor/plan/tmp-image", test_tmp_image);
        ADD("/descriptor/options/unknown", test_unknown_option);
        ADD("/descriptor/options/missing-image", test_missing_image);
        ADD("/descriptor/options/invalid-values", test_invalid_values);
        ADD("/descriptor/options/line-breaks", test_line_breaks);
        ADD("/descriptor/options/bad-paths", test_bad_paths);
#undef ADD
        g_test_add_func("/descriptor/options/fifo-does-not-block", test_fifo_does_not_block);
        return g_test_run();
}
