/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-descriptor-load: descriptors that must be refused at load time, and
 * loading a directory of them. A bad descriptor is bad configuration, so the
 * error has to name the file it came from for the admin to fix it.
 */
#include <glib/gstdio.h>
#include <string.h>

#include "descriptor.h"
#include "emu-error.h"
#include "emu-util.h"

#define ORIGIN "unit-origin.json"

/*
 * A descriptor with one piece replaced. The pieces are written with ' for "
 * so the cases stay readable; none of them needs a literal '.
 */
typedef struct {
        const char *name;
        const char *binary, *fds, *readiness, *options, *argv, *properties;
        const char *extra, *device_extra; /* more keys for the top level and for "device" */
        const char *raw;  /* the whole text instead, for syntax errors */
        const char *want; /* fragment the error message must contain */
} BadCase;

#define DEF_BINARY "'/bin/true'"
#define DEF_FDS "['monitor', 'listen']"
#define DEF_READINESS "'qmp-greeting'"
#define DEF_OPTIONS                                                                             \
        "{'image': {'type': 'path', 'required': true, 'writable-unless': 'ro'},"                \
        " 'ro': {'type': 'bool', 'default': 'off'},"                                           \
        " 'format': {'type': 'enum', 'values': ['raw'], 'default': 'raw'},"                    \
        " 'n': {'type': 'uint', 'min': 1, 'max': 4, 'default': '1'}}"
#define DEF_ARGV "['--x', 'fd=${fd:monitor},file=${image},w=${!ro},f=${format},n=${n}']"
#define DEF_PROPERTIES "{'n': '${n}', 'ro': '${ro}', 'rw': '${!ro}', 'name': 'x-${format}'}"

static char *descriptor_text(const BadCase *c, const char *kind)
{
        char *text = c->raw ? g_strdup(c->raw)
                            : g_strdup_printf("{'kind': '%s', 'binary': %s, 'fds': %s, "
                                              "'readiness': %s, 'options': %s, 'argv': %s, "
                                              "'device': {'driver': 'mini-pci', "
                                              "'chardev-property': 'chardev', "
                                              "'properties': %s%s}%s}",
                                              kind,
                                              c->binary ? c->binary : DEF_BINARY,
                                              c->fds ? c->fds : DEF_FDS,
                                              c->readiness ? c->readiness : DEF_READINESS,
                                              c->options ? c->options : DEF_OPTIONS,
                                              c->argv ? c->argv : DEF_ARGV,
                                              c->properties ? c->properties : DEF_PROPERTIES,
                                              c->device_extra ? c->device_extra : "",
                                              c->extra ? c->extra : "");
        return g_strdelimit(text, "'", '"');
}

/* The base the bad cases start from must itself load, or they prove nothing. */
static void test_base_loads(void)
{
        const BadCase base = { "base" };
        g_autofree char *text = descriptor_text(&base, "mini");
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuKind) k = emu_kind_load_data(text, ORIGIN, &err);

        g_assert_no_error(err);
        g_assert_nonnull(k);
        g_assert_cmpstr(k->name, ==, "mini");
        g_assert_cmpstr(k->origin, ==, ORIGIN);
        g_assert_cmpuint(k->options->len, ==, 4);
        g_assert_cmpstr(k->argv[0], ==, "--x");
        g_assert_null(k->argv[2]);
}

/*
 * Device properties: "${n}" alone becomes a JSON integer, "${ro}" and
 * "${!ro}" JSON booleans, and a template with other text stays a string.
 */
static void test_base_plan(void)
{
        const BadCase base = { "base" };
        g_autofree char *text = descriptor_text(&base, "mini");
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuKind) k = emu_kind_load_data(text, ORIGIN, &err);
        g_autofree char *image = NULL;
        int fd = g_file_open_tmp("emud-unit-XXXXXX", &image, &err);

        g_assert_no_error(err);
        g_assert_cmpint(fd, >=, 0);
        g_close(fd, NULL);

        g_autoptr(GHashTable) opts = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_insert(opts, "image", image);
        g_hash_table_insert(opts, "ro", "TRUE");
        g_hash_table_insert(opts, "n", "3");
        g_autoptr(EmuPlan) p = emu_plan_new(k, opts, &err);
        g_assert_cmpint(g_unlink(image), ==, 0);
        g_assert_no_error(err);

        g_autofree char *arg = g_strdup_printf("fd=3,file=%s,w=off,f=raw,n=3", image);
        g_assert_cmpuint(g_strv_length(p->argv), ==, 3);
        g_assert_cmpstr(p->argv[0], ==, "/bin/true");
        g_assert_cmpstr(p->argv[1], ==, "--x");
        g_assert_cmpstr(p->argv[2], ==, arg);

        g_autoptr(json_t) want = json_pack("{s:s, s:i, s:b, s:b, s:s}", "driver", "mini-pci",
                                           "n", 3, "ro", 1, "rw", 0, "name", "x-raw");
        g_assert_true(json_equal(p->device_args, want));
}

/*
 * A uint without "max" accepts anything up to G_MAXUINT64, but the device
 * property is a JSON integer, which stops at G_MAXINT64: past that, device_add
 * would get a negative number. Such a value must be refused instead.
 */
static void test_uint_beyond_json(void)
{
        const BadCase c = { "big", .options = "{'big': {'type': 'uint'}}", .argv = "['b=${big}']",
                            .properties = "{'big': '${big}'}" };
        g_autofree char *text = descriptor_text(&c, "big");
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuKind) k = emu_kind_load_data(text, ORIGIN, &err);
        g_assert_no_error(err);

        g_autoptr(GHashTable) opts = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_insert(opts, "big", "9223372036854775807");
        g_autoptr(EmuPlan) p = emu_plan_new(k, opts, &err);
        g_assert_no_error(err);
        g_assert_cmpint(json_integer_value(json_object_get(p->device_args, "big")), ==,
                        G_MAXINT64);

        g_hash_table_insert(opts, "big", "9223372036854775808");
        g_autoptr(EmuPlan) over = emu_plan_new(k, opts, &err);
        if (over)
                g_test_message("big=2^63 became device property %" JSON_INTEGER_FORMAT,
                               json_integer_value(json_object_get(over->device_args, "big")));
        g_assert_null(over);
        g_assert_error(err, EMU_ERROR, EMU_ERROR_INVALID_OPTION);
}

/* The shapes beyond vhost-user load, and render what they promise. */
static void test_remote_and_socket_kinds(void)
{
        const char *remote = "{'kind': 'r', 'binary': '/bin/true', 'fds': ['monitor', 'remote'], "
                             "'readiness': 'qmp-greeting', 'restart': 'no', "
                             "'argv': ['fd=${fd:remote}', 'at=${socket}'], "
                             "'sandbox': {'namespace-root': true}, "
                             "'options': {'dir': {'type': 'path', 'file-type': 'directory', "
                             "'writable': true}}, "
                             "'device': {'driver': 'd', 'fd-property': 'fd', 'hotplug': false}}";
        g_autofree char *text = g_strdelimit(g_strdup(remote), "'", '"');
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuKind) k = emu_kind_load_data(text, ORIGIN, &err);
        g_assert_no_error(err);
        g_assert_cmpstr(k->fd_property, ==, "fd");
        g_assert_null(k->chardev_property);
        g_assert_false(k->hotplug);
        g_assert_true(k->namespace_root);
        g_assert_false(emu_kind_restartable(k));

        g_autofree char *dir = g_dir_make_tmp("emud-unit-dir-XXXXXX", &err);
        g_assert_no_error(err);
        g_autoptr(GHashTable) opts = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_insert(opts, "dir", dir);
        g_autoptr(EmuPlan) p = emu_plan_new_at(k, opts, "/run/emud/vm/a/r.vu.sock", true, &err);
        g_assert_no_error(err);
        g_assert_cmpstr(p->argv[1], ==, "fd=4");
        g_assert_cmpstr(p->argv[2], ==, "at=/run/emud/vm/a/r.vu.sock");
        /* A directory option refuses a file, and ${socket} needs a path. */
        g_autofree char *file = g_build_filename(dir, "f", NULL);
        g_assert_true(g_file_set_contents(file, "x", 1, NULL));
        g_hash_table_insert(opts, "dir", file);
        g_autoptr(EmuPlan) bad = emu_plan_new_at(k, opts, "/s", true, &err);
        g_assert_null(bad);
        g_assert_error(err, EMU_ERROR, EMU_ERROR_BAD_PATH);
        g_clear_error(&err);
        g_hash_table_insert(opts, "dir", dir);
        g_autoptr(EmuPlan) nosock = emu_plan_new(k, opts, &err);
        g_assert_null(nosock);
        g_assert_nonnull(err);
        g_unlink(file);
        g_rmdir(dir);
}

static const BadCase bad_cases[] = {
        { "malformed JSON", .raw = "{'kind': 'mini',", .want = "line 1" },
        { "not an object", .raw = "['kind']", .want = "not a JSON object" },
        { "empty", .raw = "", .want = ORIGIN },
        { "bad kind name", .raw = "{'kind': '../x'}", .want = "'kind'" },
        { "missing binary", .binary = "null", .want = "'binary'" },
        { "relative binary", .binary = "'bin/true'", .want = "'binary'" },
        { "binary not a string", .binary = "42", .want = "'binary'" },
        { "unknown option type", .options = "{'a': {'type': 'float'}}", .want = "float" },
        { "option without type", .options = "{'a': {}}", .want = "unknown type" },
        { "bad option name", .options = "{'a.b': {'type': 'string'}}", .want = "a.b" },
        { "unknown option in argv", .argv = "['x=${nope}']", .want = "'nope'" },
        { "unknown fd role in argv", .argv = "['fd=${fd:nope}']", .want = "'nope'" },
        { "negated enum", .argv = "['f=${!format}']", .want = "non-bool option 'format'" },
        { "negated uint", .argv = "['n=${!n}']", .want = "non-bool option 'n'" },
        { "unterminated", .argv = "['x=${image']", .want = "unterminated" },
        { "unterminated at end", .argv = "['x=${']", .want = "unterminated" },
        { "argv not strings", .argv = "['a', 1]", .want = "'argv'" },
        { "argv missing", .argv = "null", .want = "'argv'" },
        { "unknown option in property", .properties = "{'p': '${nope}'}", .want = "'nope'" },
        { "readiness sd-notify", .readiness = "'sd-notify'", .want = "'readiness'" },
        { "readiness missing", .readiness = "null", .want = "'readiness'" },
        { "qmp-greeting without monitor", .fds = "['listen']", .argv = "['x']",
          .want = "'monitor'" },
        { "no fds", .fds = "[]", .argv = "['x']", .want = "'monitor'" },
        { "duplicate fd role", .fds = "['monitor', 'listen', 'monitor']",
          .want = "'monitor' listed twice" },
        { "unknown fd role", .fds = "['monitor', 'stdin']", .want = "'stdin'" },
        { "enum without values", .options = "{'e': {'type': 'enum'}}", .want = "'values'" },
        { "enum with empty values", .options = "{'e': {'type': 'enum', 'values': []}}",
          .want = "'values'" },
        { "uint default above max",
          .options = "{'u': {'type': 'uint', 'min': 1, 'max': 4, 'default': '9'}}",
          .want = "bad default" },
        { "uint default not a number", .options = "{'u': {'type': 'uint', 'default': 'x'}}",
          .want = "bad default" },
        { "bool default maybe", .options = "{'b': {'type': 'bool', 'default': 'maybe'}}",
          .want = "bad default" },
        { "enum default not listed",
          .options = "{'e': {'type': 'enum', 'values': ['a'], 'default': 'b'}}",
          .want = "bad default" },
        { "uint min above max", .options = "{'u': {'type': 'uint', 'min': 5, 'max': 4}}",
          .want = "min is above max" },
        { "writable-unless names an enum",
          .options = "{'p': {'type': 'path', 'writable-unless': 'e'},"
                     " 'e': {'type': 'enum', 'values': ['a']}}",
          .argv = "['x']", .properties = "{}", .want = "writable-unless" },
        /* A misspelt key would silently change what a kind does. */
        { "unknown top-level key", .extra = ", 'binnary': '/bin/false'", .want = "'binnary'" },
        { "unknown option key",
          .options = "{'a': {'type': 'string', 'defualt': 'x'}}", .argv = "['x']",
          .properties = "{}", .want = "'defualt'" },
        { "unknown device key", .device_extra = ", 'bus': 'pcie.0'", .want = "'bus'" },
        /* The kinds beyond vhost-user: readiness, remote fds, restart rules, probes. */
        { "readiness output without its line", .readiness = "'output'",
          .want = "'ready-output'" },
        { "ready-output with qmp-greeting", .extra = ", 'ready-output': 'up'",
          .want = "'ready-output'" },
        { "ready-output empty", .readiness = "'output'", .extra = ", 'ready-output': ''",
          .want = "'ready-output'" },
        { "fd-property without the remote fd",
          .device_extra = ", 'fd-property': 'fd'", .want = "one of" },
        { "remote kind with a chardev", .fds = "['monitor', 'remote']",
          .argv = "['x']", .extra = ", 'restart': 'no'", .want = "no chardev" },
        { "remote kind restarted in place",
          .raw = "{'kind': 'r', 'binary': '/bin/true', 'fds': ['monitor', 'remote'], "
                 "'readiness': 'qmp-greeting', 'argv': ['x'], "
                 "'device': {'driver': 'd', 'fd-property': 'fd'}}",
          .want = "a 'remote' fd" },
        { "no reconnect but restarted", .device_extra = ", 'reconnect': false",
          .want = "\"restart\": \"no\"" },
        { "hotplug not a boolean", .device_extra = ", 'hotplug': 'no'", .want = "booleans" },
        { "socket-property with a chardev", .device_extra = ", 'socket-property': 's'",
          .want = "one of" },
        { "requires not a list", .extra = ", 'requires': {}", .want = "'requires'" },
        { "requires without reason", .extra = ", 'requires': [{'probe': [], 'output': 'x'}]",
          .want = "'reason'" },
        { "requires unknown key",
          .extra = ", 'requires': [{'probe': [], 'output': 'x', 'reason': 'r', 'why': 1}]",
          .want = "'why'" },
        { "namespace-root not a boolean", .extra = ", 'sandbox': {'namespace-root': 1}",
          .want = "'namespace-root'" },
        { "file-type on a string", .options = "{'s': {'type': 'string', 'file-type': 'file'}}",
          .argv = "['x']", .properties = "{}", .want = "'file-type'" },
        { "file-type unknown", .options = "{'p': {'type': 'path', 'file-type': 'socket'}}",
          .argv = "['x']", .properties = "{}", .want = "'file-type'" },
        { "writable and writable-unless",
          .options = "{'p': {'type': 'path', 'writable': true, 'writable-unless': 'b'},"
                     " 'b': {'type': 'bool'}}",
          .argv = "['x']", .properties = "{}", .want = "exclude each other" },
        { "option named socket", .options = "{'socket': {'type': 'string'}}", .argv = "['x']",
          .properties = "{}", .want = "reserved" },
        /* emud sets these itself, so a descriptor may not. */
        { "device property driver", .properties = "{'driver': 'other'}", .want = "'driver'" },
        { "device property id", .properties = "{'id': 'x'}", .want = "'id'" },
        { "device property bus", .properties = "{'bus': 'pcie.0'}", .want = "'bus'" },
        { "device property chardev", .properties = "{'chardev': 'c'}", .want = "'chardev'" },
        { "writable-unless names nothing",
          .options = "{'p': {'type': 'path', 'writable-unless': 'ghost'}}", .argv = "['x']",
          .properties = "{}", .want = "writable-unless" },
};

static void test_bad_descriptor(gconstpointer data)
{
        const BadCase *c = data;
        g_autofree char *text = descriptor_text(c, "mini");
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuKind) k = emu_kind_load_data(text, ORIGIN, &err);

        g_test_message("descriptor: %s", text);
        g_assert_null(k);
        g_assert_error(err, EMU_ERROR, EMU_ERROR_BAD_DESCRIPTOR);
        g_test_message("error: %s", err->message);
        g_assert_true(g_str_has_prefix(err->message, ORIGIN ": "));
        g_assert_nonnull(strstr(err->message, c->want));
}

/* A scratch directory and the files put into it, removed again by dir_cleanup(). */
typedef struct {
        char *path;
        GPtrArray *files;
} TmpDir;

static void tmpdir_init(TmpDir *t)
{
        g_autoptr(GError) err = NULL;

        t->path = g_dir_make_tmp("emud-unit-kinds-XXXXXX", &err);
        g_assert_no_error(err);
        t->files = g_ptr_array_new_with_free_func(g_free);
}

/* A valid descriptor of the given kind, or garbage when kind is NULL. */
static void tmpdir_add(TmpDir *t, const char *name, const char *kind)
{
        g_autoptr(GError) err = NULL;
        char *path = g_build_filename(t->path, name, NULL);
        const BadCase c = { name };
        g_autofree char *text = kind ? descriptor_text(&c, kind) : g_strdup("this is not JSON");

        g_file_set_contents(path, text, -1, &err);
        g_assert_no_error(err);
        g_ptr_array_add(t->files, path);
}

/* Remove the files and the directory; t->path stays for error messages until freed. */
static void tmpdir_clear(TmpDir *t)
{
        for (guint i = 0; i < t->files->len; i++)
                g_assert_cmpint(g_unlink(g_ptr_array_index(t->files, i)), ==, 0);
        g_assert_cmpint(g_rmdir(t->path), ==, 0);
        g_clear_pointer(&t->files, g_ptr_array_unref);
}

/* Each test removes its directory before the assertions, so a failure leaves nothing behind. */
static void test_dir_duplicate_kind(void)
{
        TmpDir t;
        g_autoptr(GError) err = NULL;

        tmpdir_init(&t);
        g_autofree char *path = t.path;
        tmpdir_add(&t, "one.json", "twin");
        tmpdir_add(&t, "two.json", "twin");
        g_autoptr(GHashTable) kinds = emu_kinds_load_dir(path, &err);
        tmpdir_clear(&t);
        g_assert_null(kinds);
        g_assert_error(err, EMU_ERROR, EMU_ERROR_BAD_DESCRIPTOR);
        g_assert_nonnull(strstr(err->message, "twin"));
        g_assert_nonnull(strstr(err->message, path));
}

static void test_dir_ignores_other_files(void)
{
        TmpDir t;
        g_autoptr(GError) err = NULL;

        tmpdir_init(&t);
        g_autofree char *path = t.path;
        tmpdir_add(&t, "a.json", "alpha");
        tmpdir_add(&t, "b.json", "beta");
        tmpdir_add(&t, "README", NULL);
        tmpdir_add(&t, "c.json.bak", NULL);
        tmpdir_add(&t, "d.json~", NULL);
        g_autoptr(GHashTable) kinds = emu_kinds_load_dir(path, &err);
        tmpdir_clear(&t);
        g_assert_no_error(err);
        g_assert_cmpuint(g_hash_table_size(kinds), ==, 2);
        const EmuKind *alpha = g_hash_table_lookup(kinds, "alpha");
        g_assert_nonnull(alpha);
        g_assert_cmpstr(alpha->name, ==, "alpha");
        g_assert_true(g_str_has_suffix(alpha->origin, "/a.json"));
        g_assert_nonnull(g_hash_table_lookup(kinds, "beta"));
}

static void test_dir_bad_file_fails_all(void)
{
        TmpDir t;
        g_autoptr(GError) err = NULL;

        tmpdir_init(&t);
        g_autofree char *path = t.path;
        tmpdir_add(&t, "good.json", "good");
        tmpdir_add(&t, "bad.json", NULL);
        g_autoptr(GHashTable) kinds = emu_kinds_load_dir(path, &err);
        tmpdir_clear(&t);
        g_assert_null(kinds);
        g_assert_error(err, EMU_ERROR, EMU_ERROR_BAD_DESCRIPTOR);
        g_assert_nonnull(strstr(err->message, "bad.json"));
}

static void test_dir_missing(void)
{
        g_autoptr(GError) err = NULL;
        g_autoptr(GHashTable) kinds = emu_kinds_load_dir("/nonexistent/emud-unit", &err);

        g_assert_null(kinds);
        g_assert_nonnull(err);
}

static void test_dir_shipped(void)
{
        const char *root = g_getenv("EMUD_SOURCE_ROOT");
        g_assert_nonnull(root);
        g_autofree char *dir = g_build_filename(root, "emulators", NULL);
        g_autoptr(GError) err = NULL;
        g_autoptr(GHashTable) kinds = emu_kinds_load_dir(dir, &err);

        g_assert_no_error(err);
        const EmuKind *k = g_hash_table_lookup(kinds, "vhost-user-blk");
        g_assert_nonnull(k);
        g_assert_cmpstr(k->driver, ==, "vhost-user-blk-pci");
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/descriptor-load/base-loads", test_base_loads);
        for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
                g_autofree char *path = g_strdup_printf("/descriptor-load/bad/%s",
                                                        bad_cases[i].name);
                g_test_add_data_func(g_strdelimit(path, " ", '-'), &bad_cases[i],
                                     test_bad_descriptor);
        }
        g_test_add_func("/descriptor-load/remote-and-socket", test_remote_and_socket_kinds);
        g_test_add_func("/descriptor-load/dir/duplicate-kind", test_dir_duplicate_kind);
        g_test_add_func("/descriptor-load/dir/ignores-other-files", test_dir_ignores_other_files);
        g_test_add_func("/descriptor-load/dir/bad-file-fails-all", test_dir_bad_file_fails_all);
        g_test_add_func("/descriptor-load/dir/missing", test_dir_missing);
        g_test_add_func("/descriptor-load/dir/shipped", test_dir_shipped);
        g_test_add_func("/descriptor-load/plan/base", test_base_plan);
        g_test_add_func("/descriptor-load/plan/uint-beyond-json", test_uint_beyond_json);
        return g_test_run();
}
