/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * descriptor: emulator kinds as data, and the plan (argv, fds, device_add
 * arguments) rendered from a kind and a user's options.
 *
 * Everything a user passes is checked here, before any process or file
 * exists, so a bad spawn request changes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "descriptor.h"
#include "emu-error.h"
#include "emu-id.h"
#include "emu-util.h"

static const char *const fd_role_names[_EMU_FD_MAX] = {
        [EMU_FD_MONITOR] = "monitor",
        [EMU_FD_LISTEN] = "listen",
};

const char *emu_fd_role_name(EmuFdRole role)
{
        return role < _EMU_FD_MAX ? fd_role_names[role] : "?";
}

static void option_spec_free(EmuOptionSpec *o)
{
        g_free(o->name);
        g_free(o->default_value);
        g_strfreev(o->values);
        g_free(o->writable_unless);
        g_free(o->description);
        g_free(o);
}

void emu_kind_free(EmuKind *k)
{
        if (!k)
                return;
        g_free(k->name);
        g_free(k->description);
        g_free(k->origin);
        g_free(k->binary);
        g_free(k->restart);
        g_free(k->sandbox_steps);
        g_free(k->policy);
        if (k->options)
                g_ptr_array_unref(k->options);
        g_strfreev(k->argv);
        g_free(k->fds);
        g_free(k->driver);
        g_free(k->chardev_property);
        json_decref(k->device_properties);
        g_free(k);
}

const EmuOptionSpec *emu_kind_find_option(const EmuKind *k, const char *name)
{
        for (guint i = 0; i < k->options->len; i++) {
                const EmuOptionSpec *o = g_ptr_array_index(k->options, i);
                if (strcmp(o->name, name) == 0)
                        return o;
        }
        return NULL;
}

static bool bad(GError **error, const EmuKind *k, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static bool bad(GError **error, const EmuKind *k, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_DESCRIPTOR, "%s: %s", k->origin, msg);
        return false;
}

/* A misspelt key must not be ignored: it would silently change what a kind does. */
static bool check_keys(const EmuKind *k, json_t *obj, const char *where,
                       const char *const *known, GError **error)
{
        const char *key;
        json_t *value;
        json_object_foreach (obj, key, value)
                if (!g_strv_contains(known, key))
                        return bad(error, k, "%s: unknown key '%s'", where, key);
        return true;
}

static bool parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "on", "true", "yes", "1" };
        static const char *const no[] = { "off", "false", "no", "0" };
        for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
                if (g_ascii_strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return true;
                }
                if (g_ascii_strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return true;
                }
        }
        return false;
}

/*
 * Check one value against its spec and return it in normalised form (bools
 * as on/off, numbers in decimal). NULL with error set when it is not valid.
 */
static char *normalise_value(const EmuKind *k, const EmuOptionSpec *o, const char *value,
                             GError **error)
{
        switch (o->type) {
        case EMU_OPT_STRING:
        case EMU_OPT_PATH:
                return g_strdup(value);
        case EMU_OPT_ENUM: {
                if (g_strv_contains((const char *const *)o->values, value))
                        return g_strdup(value);
                g_autofree char *list = g_strjoinv(", ", o->values);
                g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                            "%s=%s is not valid for kind %s: must be one of %s", o->name, value,
                            k->name, list);
                return NULL;
        }
        case EMU_OPT_BOOL: {
                bool b;
                if (parse_bool(value, &b))
                        return g_strdup(b ? "on" : "off");
                g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                            "%s=%s is not valid for kind %s: must be on or off", o->name, value,
                            k->name);
                return NULL;
        }
        case EMU_OPT_UINT: {
                guint64 n = 0;
                if (!g_ascii_string_to_unsigned(value, 10, o->min, o->max, &n, NULL)) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                                    "%s=%s is not valid for kind %s: must be a whole number "
                                    "from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
                                    o->name, value, k->name, o->min, o->max);
                        return NULL;
                }
                return g_strdup_printf("%" G_GUINT64_FORMAT, n);
        }
        }
        g_assert_not_reached();
}

static bool load_option(EmuKind *k, const char *name, json_t *spec, GError **error)
{
        static const char *const type_names[] = {
                [EMU_OPT_STRING] = "string", [EMU_OPT_PATH] = "path", [EMU_OPT_ENUM] = "enum",
                [EMU_OPT_BOOL] = "bool",     [EMU_OPT_UINT] = "uint",
        };
        static const char *const option_keys[] = { "type", "required", "default", "values",
                                                   "min", "max", "writable-unless",
                                                   "description", NULL };
        if (!json_is_object(spec))
                return bad(error, k, "option %s: not an object", name);
        g_autofree char *where = g_strdup_printf("option %s", name);
        if (!check_keys(k, spec, where, option_keys, error))
                return false;
        if (!emu_id_valid(name))
                return bad(error, k, "option name '%s' is not %s", name, EMU_ID_RULE);
        if (g_str_equal(name, "restart") || g_str_equal(name, "seccomp"))
                return bad(error, k, "option name '%s' is reserved for emud", name);

        EmuOptionSpec *o = g_new0(EmuOptionSpec, 1);
        g_ptr_array_add(k->options, o);
        o->name = g_strdup(name);
        o->max = G_MAXINT64; /* values end up as JSON integers, which are signed */

        const char *type = json_string_value(json_object_get(spec, "type"));
        size_t t;
        for (t = 0; t < G_N_ELEMENTS(type_names); t++)
                if (type && strcmp(type, type_names[t]) == 0)
                        break;
        if (t == G_N_ELEMENTS(type_names))
                return bad(error, k, "option %s: unknown type '%s'", name, type ? type : "");
        o->type = (EmuOptType)t;

        o->required = json_is_true(json_object_get(spec, "required"));
        o->description = g_strdup(json_string_value(json_object_get(spec, "description")));
        o->writable_unless =
                g_strdup(json_string_value(json_object_get(spec, "writable-unless")));

        json_t *values = json_object_get(spec, "values");
        if (o->type == EMU_OPT_ENUM) {
                if (!json_is_array(values) || json_array_size(values) == 0)
                        return bad(error, k, "option %s: enum needs a 'values' list", name);
                o->values = g_new0(char *, json_array_size(values) + 1);
                size_t i;
                json_t *v;
                json_array_foreach (values, i, v) {
                        if (!json_is_string(v))
                                return bad(error, k, "option %s: values must be strings", name);
                        o->values[i] = g_strdup(json_string_value(v));
                }
        }
        if (o->type == EMU_OPT_UINT) {
                json_t *min = json_object_get(spec, "min"), *max = json_object_get(spec, "max");
                if (min && (!json_is_integer(min) || json_integer_value(min) < 0))
                        return bad(error, k, "option %s: min must be a whole number", name);
                if (max && (!json_is_integer(max) || json_integer_value(max) < 0))
                        return bad(error, k, "option %s: max must be a whole number", name);
                o->min = min ? (guint64)json_integer_value(min) : 0;
                o->max = max ? (guint64)json_integer_value(max) : G_MAXINT64;
                if (o->min > o->max)
                        return bad(error, k, "option %s: min is above max", name);
        }

        json_t *def = json_object_get(spec, "default");
        if (def) {
                if (!json_is_string(def))
                        return bad(error, k, "option %s: default must be a string", name);
                g_autoptr(GError) err = NULL;
                o->default_value = normalise_value(k, o, json_string_value(def), &err);
                if (!o->default_value)
                        return bad(error, k, "option %s: bad default: %s", name, err->message);
        }
        return true;
}

/*
 * Expand one template. With values == NULL it only checks that every
 * reference names a known option or fd role (done at load time).
 */
static bool expand(const EmuKind *k, const char *tmpl, GHashTable *values, bool escape,
                   GString *out, GError **error)
{
        const char *p = tmpl;
        while (*p) {
                const char *start = strstr(p, "${");
                if (!start) {
                        g_string_append(out, p);
                        break;
                }
                g_string_append_len(out, p, start - p);
                const char *end = strchr(start, '}');
                if (!end)
                        return bad(error, k, "unterminated ${ in '%s'", tmpl);
                g_autofree char *ref = g_strndup(start + 2, end - start - 2);
                p = end + 1;

                if (g_str_has_prefix(ref, "fd:")) {
                        size_t i;
                        for (i = 0; i < k->n_fds; i++)
                                if (strcmp(fd_role_names[k->fds[i]], ref + 3) == 0)
                                        break;
                        if (i == k->n_fds)
                                return bad(error, k, "'%s' names fd role '%s' that 'fds' lacks",
                                           tmpl, ref + 3);
                        g_string_append_printf(out, "%zu", 3 + i);
                        continue;
                }

                bool negate = ref[0] == '!';
                const char *name = negate ? ref + 1 : ref;
                const EmuOptionSpec *o = emu_kind_find_option(k, name);
                if (!o)
                        return bad(error, k, "'%s' names unknown option '%s'", tmpl, name);
                if (negate && o->type != EMU_OPT_BOOL)
                        return bad(error, k, "'%s' negates non-bool option '%s'", tmpl, name);
                if (!values)
                        continue;
                const char *v = g_hash_table_lookup(values, name);
                if (!v)
                        return bad(error, k, "'%s' uses option '%s' that has no value and no "
                                   "default", tmpl, name);
                if (negate)
                        v = strcmp(v, "on") == 0 ? "off" : "on";
                for (const char *c = v; *c; c++) {
                        if (escape && *c == ',')
                                g_string_append_c(out, ',');
                        g_string_append_c(out, *c);
                }
        }
        return true;
}

/* Device property values: "${opt}" alone takes the option's JSON type. */
static json_t *render_property(const EmuKind *k, json_t *tmpl, GHashTable *values,
                               GError **error)
{
        if (!json_is_string(tmpl))
                return json_deep_copy(tmpl);
        const char *s = json_string_value(tmpl);
        size_t n = strlen(s);
        if (values && n > 3 && g_str_has_prefix(s, "${") && s[n - 1] == '}' &&
            !strchr(s + 2, '$')) {
                bool negate = s[2] == '!';
                g_autofree char *name = g_strndup(s + 2 + negate, n - 3 - negate);
                const EmuOptionSpec *o = emu_kind_find_option(k, name);
                const char *v = g_hash_table_lookup(values, name);
                if (o && v && o->type == EMU_OPT_UINT && !negate)
                        return json_integer((json_int_t)g_ascii_strtoull(v, NULL, 10));
                if (o && v && o->type == EMU_OPT_BOOL)
                        return json_boolean((strcmp(v, "on") == 0) != negate);
        }
        g_autoptr(GString) out = g_string_new(NULL);
        if (!expand(k, s, values, false, out, error))
                return NULL;
        return json_string(out->str);
}

static bool load_fds(EmuKind *k, json_t *fds, GError **error)
{
        if (fds && !json_is_array(fds))
                return bad(error, k, "'fds' must be a list");
        k->n_fds = json_array_size(fds);
        k->fds = g_new0(EmuFdRole, k->n_fds ? k->n_fds : 1);
        for (size_t i = 0; i < k->n_fds; i++) {
                const char *role = json_string_value(json_array_get(fds, i));
                size_t r;
                for (r = 0; r < _EMU_FD_MAX; r++)
                        if (role && strcmp(role, fd_role_names[r]) == 0)
                                break;
                if (r == _EMU_FD_MAX)
                        return bad(error, k, "unknown fd role '%s'", role ? role : "");
                for (size_t j = 0; j < i; j++)
                        if (k->fds[j] == (EmuFdRole)r)
                                return bad(error, k, "fd role '%s' listed twice", role);
                k->fds[i] = (EmuFdRole)r;
        }
        return true;
}

static bool load_sandbox(EmuKind *k, json_t *sb, GError **error)
{
        static const char *const keys[] = { "steps", "policy", "nofile", "nproc",
                                            "memory-max", "pids-max", NULL };
        if (sb && !json_is_object(sb))
                return bad(error, k, "'sandbox' must be an object");
        if (sb && !check_keys(k, sb, "sandbox", keys, error))
                return false;
        json_t *steps = json_object_get(sb, "steps"), *policy = json_object_get(sb, "policy");
        if ((steps && !json_is_string(steps)) || (policy && !json_is_string(policy)))
                return bad(error, k, "sandbox: 'steps' and 'policy' must be strings");
        k->sandbox_steps = g_strdup(steps ? json_string_value(steps) : "all");
        k->policy = g_strdup(policy ? json_string_value(policy) : k->name);
        if (!emu_id_valid(k->policy))
                return bad(error, k, "sandbox: policy name '%s' is not %s", k->policy,
                           EMU_ID_RULE);
        struct {
                const char *key;
                guint64 *slot;
        } numbers[] = { { "nofile", &k->nofile },
                        { "nproc", &k->nproc },
                        { "memory-max", &k->memory_max },
                        { "pids-max", &k->pids_max } };
        for (size_t i = 0; i < G_N_ELEMENTS(numbers); i++) {
                json_t *v = json_object_get(sb, numbers[i].key);
                if (v && (!json_is_integer(v) || json_integer_value(v) <= 0))
                        return bad(error, k, "sandbox: '%s' must be a positive integer",
                                   numbers[i].key);
                *numbers[i].slot = v ? (guint64)json_integer_value(v) : 0;
        }
        return true;
}

static bool kind_has_fd(const EmuKind *k, EmuFdRole role)
{
        for (size_t i = 0; i < k->n_fds; i++)
                if (k->fds[i] == role)
                        return true;
        return false;
}

EmuKind *emu_kind_load_data(const char *data, const char *origin, GError **error)
{
        g_autoptr(EmuKind) k = g_new0(EmuKind, 1);
        k->origin = g_strdup(origin);
        k->options = g_ptr_array_new_with_free_func((GDestroyNotify)option_spec_free);

        json_error_t jerr;
        g_autoptr(json_t) root = json_loads(data, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                bad(error, k, "line %d: %s", jerr.line, jerr.text);
                return NULL;
        }
        if (!json_is_object(root)) {
                bad(error, k, "not a JSON object");
                return NULL;
        }
        static const char *const top_keys[] = { "kind", "description", "binary", "fds",
                                                "readiness", "options", "argv", "device",
                                                "restart", "sandbox", NULL };
        if (!check_keys(k, root, "descriptor", top_keys, error))
                return NULL;

        const char *name = json_string_value(json_object_get(root, "kind"));
        if (!name || !emu_id_valid(name)) {
                bad(error, k, "'kind' must be %s", EMU_ID_RULE);
                return NULL;
        }
        k->name = g_strdup(name);
        k->description = g_strdup(json_string_value(json_object_get(root, "description")));

        const char *binary = json_string_value(json_object_get(root, "binary"));
        if (!binary || binary[0] != '/') {
                bad(error, k, "'binary' must be an absolute path");
                return NULL;
        }
        k->binary = g_strdup(binary);

        static const char *const restarts[] = { "no", "on-failure", "always", NULL };
        json_t *restart = json_object_get(root, "restart");
        if (restart && !g_strv_contains(restarts, json_string_value(restart) ?: "")) {
                bad(error, k, "'restart' must be \"no\", \"on-failure\" or \"always\"");
                return NULL;
        }
        k->restart = g_strdup(restart ? json_string_value(restart) : "on-failure");
        if (!load_sandbox(k, json_object_get(root, "sandbox"), error))
                return NULL;

        if (!load_fds(k, json_object_get(root, "fds"), error))
                return NULL;

        const char *readiness = json_string_value(json_object_get(root, "readiness"));
        if (!readiness || strcmp(readiness, "qmp-greeting") != 0) {
                bad(error, k, "'readiness' must be \"qmp-greeting\"");
                return NULL;
        }
        k->readiness = EMU_READY_QMP_GREETING;
        if (!kind_has_fd(k, EMU_FD_MONITOR)) {
                bad(error, k, "readiness qmp-greeting needs the 'monitor' fd");
                return NULL;
        }

        json_t *options = json_object_get(root, "options");
        if (options && !json_is_object(options)) {
                bad(error, k, "'options' must be an object");
                return NULL;
        }
        const char *oname;
        json_t *ospec;
        json_object_foreach (options, oname, ospec)
                if (!load_option(k, oname, ospec, error))
                        return NULL;
        for (guint i = 0; i < k->options->len; i++) {
                const EmuOptionSpec *o = g_ptr_array_index(k->options, i);
                const EmuOptionSpec *dep = o->writable_unless
                                                   ? emu_kind_find_option(k, o->writable_unless)
                                                   : NULL;
                if (o->writable_unless && (!dep || dep->type != EMU_OPT_BOOL)) {
                        bad(error, k, "option %s: writable-unless must name a bool option",
                            o->name);
                        return NULL;
                }
        }

        json_t *argv = json_object_get(root, "argv");
        if (!json_is_array(argv)) {
                bad(error, k, "'argv' must be a list of strings");
                return NULL;
        }
        k->argv = g_new0(char *, json_array_size(argv) + 1);
        for (size_t i = 0; i < json_array_size(argv); i++) {
                const char *a = json_string_value(json_array_get(argv, i));
                if (!a) {
                        bad(error, k, "'argv' must be a list of strings");
                        return NULL;
                }
                k->argv[i] = g_strdup(a);
                g_autoptr(GString) scratch = g_string_new(NULL);
                if (!expand(k, a, NULL, true, scratch, error))
                        return NULL;
        }

        json_t *device = json_object_get(root, "device");
        const char *driver = json_string_value(json_object_get(device, "driver"));
        const char *chardev = json_string_value(json_object_get(device, "chardev-property"));
        json_t *props = json_object_get(device, "properties");
        if (!driver || !chardev || (props && !json_is_object(props))) {
                bad(error, k, "'device' needs 'driver', 'chardev-property' and an optional "
                    "'properties' object");
                return NULL;
        }
        static const char *const device_keys[] = { "driver", "chardev-property", "properties",
                                                   NULL };
        if (!check_keys(k, device, "device", device_keys, error))
                return NULL;
        k->driver = g_strdup(driver);
        k->chardev_property = g_strdup(chardev);
        k->device_properties = props ? json_incref(props) : json_object();
        const char *pname;
        json_t *pval;
        json_object_foreach (k->device_properties, pname, pval) {
                /* emud sets these itself; a descriptor must not override them. */
                if (g_str_equal(pname, "driver") || g_str_equal(pname, "id") ||
                    g_str_equal(pname, "bus") || g_str_equal(pname, k->chardev_property)) {
                        bad(error, k, "device property '%s' is set by emud", pname);
                        return NULL;
                }
                g_autoptr(json_t) checked = render_property(k, pval, NULL, error);
                if (!checked)
                        return NULL;
        }
        return g_steal_pointer(&k);
}

EmuKind *emu_kind_load_file(const char *path, GError **error)
{
        g_autofree char *data = NULL;
        if (!g_file_get_contents(path, &data, NULL, error))
                return NULL;
        return emu_kind_load_data(data, path, error);
}

GHashTable *emu_kinds_load_dir(const char *dir, GError **error)
{
        g_autoptr(GDir) d = g_dir_open(dir, 0, error);
        if (!d)
                return NULL;
        g_autoptr(GHashTable) kinds = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                                            (GDestroyNotify)emu_kind_free);
        const char *entry;
        while ((entry = g_dir_read_name(d))) {
                if (!g_str_has_suffix(entry, ".json"))
                        continue;
                g_autofree char *path = g_build_filename(dir, entry, NULL);
                EmuKind *k = emu_kind_load_file(path, error);
                if (!k)
                        return NULL;
                if (g_hash_table_contains(kinds, k->name)) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_DESCRIPTOR,
                                    "%s: kind %s is defined twice", path, k->name);
                        emu_kind_free(k);
                        return NULL;
                }
                g_hash_table_insert(kinds, k->name, k);
        }
        return g_steal_pointer(&kinds);
}

void emu_plan_free(EmuPlan *p)
{
        if (!p)
                return;
        g_strfreev(p->argv);
        if (p->values)
                g_hash_table_unref(p->values);
        json_decref(p->device_args);
        g_free(p);
}

/* A path the emulator will open: absolute, present, of the right type, and openable. */
static bool check_path(const EmuOptionSpec *o, const char *path, bool writable, GError **error)
{
        if (path[0] != '/') {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "%s=%s: the path must be absolute", o->name, path);
                return false;
        }
        /*
         * Look at the type through an O_PATH fd before really opening anything:
         * opening some devices has effects (a watchdog starts, a tape rewinds)
         * and a FIFO would block. Then reopen that same inode with the access
         * the emulator will need, to check permissions.
         */
        emu_autofd pfd = open(path, O_PATH | O_CLOEXEC);
        struct stat st;
        if (pfd < 0 || fstat(pfd, &st) < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH, "%s=%s: %s", o->name, path,
                            g_strerror(errno));
                return false;
        }
        if (!(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "%s=%s: not a regular file or block device", o->name, path);
                return false;
        }
        g_autofree char *proc = g_strdup_printf("/proc/self/fd/%d", pfd);
        emu_autofd fd = open(proc, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY |
                                           O_NONBLOCK);
        if (fd < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH, "%s=%s: cannot open %s: %s",
                            o->name, path, writable ? "for reading and writing" : "for reading",
                            g_strerror(errno));
                return false;
        }
        return true;
}

static EmuPlan *plan_new(const EmuKind *k, GHashTable *options, bool check_paths,
                         GError **error)
{
        g_autoptr(EmuPlan) p = g_new0(EmuPlan, 1);
        p->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

        GHashTableIter it;
        gpointer key, val;
        g_hash_table_iter_init(&it, options);
        while (g_hash_table_iter_next(&it, &key, &val)) {
                const EmuOptionSpec *o = emu_kind_find_option(k, key);
                if (!o) {
                        g_autoptr(GString) known = g_string_new(NULL);
                        for (guint i = 0; i < k->options->len; i++) {
                                const EmuOptionSpec *ko = g_ptr_array_index(k->options, i);
                                g_string_append_printf(known, "%s%s", i ? ", " : "", ko->name);
                        }
                        g_set_error(error, EMU_ERROR, EMU_ERROR_UNKNOWN_OPTION,
                                    "unknown option '%s' for kind %s (known: %s)",
                                    (const char *)key, k->name, known->str);
                        return NULL;
                }
                if (strpbrk(val, "\n\r")) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                                    "option %s: line breaks are not allowed", o->name);
                        return NULL;
                }
                char *norm = normalise_value(k, o, val, error);
                if (!norm)
                        return NULL;
                g_hash_table_insert(p->values, g_strdup(key), norm);
        }

        for (guint i = 0; i < k->options->len; i++) {
                const EmuOptionSpec *o = g_ptr_array_index(k->options, i);
                if (g_hash_table_contains(p->values, o->name))
                        continue;
                if (o->required) {
                        g_autofree char *what = o->description
                                                        ? g_strdup_printf(" (%s)", o->description)
                                                        : g_strdup("");
                        g_set_error(error, EMU_ERROR, EMU_ERROR_MISSING_OPTION,
                                    "option '%s'%s is required for kind %s", o->name, what,
                                    k->name);
                        return NULL;
                }
                if (o->default_value)
                        g_hash_table_insert(p->values, g_strdup(o->name),
                                            g_strdup(o->default_value));
        }

        for (guint i = 0; i < k->options->len; i++) {
                const EmuOptionSpec *o = g_ptr_array_index(k->options, i);
                const char *v = g_hash_table_lookup(p->values, o->name);
                if (o->type != EMU_OPT_PATH || !v || !check_paths)
                        continue;
                const char *ro = o->writable_unless
                                         ? g_hash_table_lookup(p->values, o->writable_unless)
                                         : NULL;
                bool writable = o->writable_unless && !(ro && strcmp(ro, "on") == 0);
                if (!check_path(o, v, writable, error))
                        return NULL;
                /* The emulator gets the canonical path: a sandbox binds the file there,
                 * not at the symlinks (/dev/disk/by-id/...) that lead to it. */
                g_autofree char *real = realpath(v, NULL);
                if (real && strcmp(real, v) != 0)
                        g_hash_table_insert(p->values, g_strdup(o->name), g_steal_pointer(&real));
        }

        size_t n = g_strv_length(k->argv);
        p->argv = g_new0(char *, n + 2);
        p->argv[0] = g_strdup(k->binary);
        for (size_t i = 0; i < n; i++) {
                g_autoptr(GString) out = g_string_new(NULL);
                if (!expand(k, k->argv[i], p->values, true, out, error))
                        return NULL;
                p->argv[i + 1] = g_string_free(g_steal_pointer(&out), FALSE);
        }

        p->device_args = json_pack("{s:s}", "driver", k->driver);
        const char *pname;
        json_t *pval;
        json_object_foreach (k->device_properties, pname, pval) {
                json_t *v = render_property(k, pval, p->values, error);
                if (!v)
                        return NULL;
                json_object_set_new(p->device_args, pname, v);
        }
        return g_steal_pointer(&p);
}

EmuPlan *emu_plan_new(const EmuKind *k, GHashTable *options, GError **error)
{
        return plan_new(k, options, true, error);
}

EmuPlan *emu_plan_new_unchecked(const EmuKind *k, GHashTable *options, GError **error)
{
        return plan_new(k, options, false, error);
}
