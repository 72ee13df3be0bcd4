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

#include "descriptor-internal.h"
#include "emu-error.h"
#include "emu-id.h"
#include "emu-util.h"

static const char *const fd_role_names[_EMU_FD_MAX] = {
        [EMU_FD_MONITOR] = "monitor",
        [EMU_FD_LISTEN] = "listen",
        [EMU_FD_REMOTE] = "remote",
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

bool emu_kind_restartable(const EmuKind *k)
{
        /* A restart in place needs QEMU to reattach by itself to the new process. */
        return k->chardev_property && k->reconnect;
}

EmuKind *emu_kind_ref(EmuKind *k)
{
        k->refs++;
        return k;
}

void emu_kind_unref(EmuKind *k)
{
        if (!k || --k->refs > 0)
                return;
        g_free(k->ready_output);
        g_free(k->fd_property);
        g_free(k->socket_property);
        json_decref(k->requires);
        g_free(k->package);
        g_free(k->source);
        g_free(k->unavailable);
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

bool emu_kind_bad(GError **error, const EmuKind *k, const char *fmt, ...)
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
                        return emu_kind_bad(error, k, "%s: unknown key '%s'", where, key);
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
char *emu_option_normalise(const EmuKind *k, const EmuOptionSpec *o, const char *value,
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

/*
 * Expand one template. With values == NULL it only checks that every
 * reference names a known option or fd role (done at load time).
 */
bool emu_template_expand(const EmuKind *k, const char *tmpl, GHashTable *values, bool escape,
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
                        return emu_kind_bad(error, k, "unterminated ${ in '%s'", tmpl);
                g_autofree char *ref = g_strndup(start + 2, end - start - 2);
                p = end + 1;

                if (g_str_equal(ref, "socket")) {
                        /* The emulator's socket path, known once its VM is. */
                        const char *v = values ? g_hash_table_lookup(values, "@socket") : NULL;
                        if (values && !v)
                                return emu_kind_bad(error, k, "'%s' needs the emulator's socket "
                                                    "path, which is not known here", tmpl);
                        g_string_append(out, v ? v : "");
                        continue;
                }
                if (g_str_has_prefix(ref, "fd:")) {
                        size_t i;
                        for (i = 0; i < k->n_fds; i++)
                                if (strcmp(emu_fd_role_name(k->fds[i]), ref + 3) == 0)
                                        break;
                        if (i == k->n_fds)
                                return emu_kind_bad(error, k, "'%s' names fd role '%s' that 'fds' lacks",
                                           tmpl, ref + 3);
                        g_string_append_printf(out, "%zu", 3 + i);
                        continue;
                }

                bool negate = ref[0] == '!';
                const char *name = negate ? ref + 1 : ref;
                const EmuOptionSpec *o = emu_kind_find_option(k, name);
                if (!o)
                        return emu_kind_bad(error, k, "'%s' names unknown option '%s'", tmpl, name);
                if (negate && o->type != EMU_OPT_BOOL)
                        return emu_kind_bad(error, k, "'%s' negates non-bool option '%s'", tmpl, name);
                if (!values)
                        continue;
                const char *v = g_hash_table_lookup(values, name);
                if (!v)
                        return emu_kind_bad(error, k, "'%s' uses option '%s' that has no value and no "
                                   "default", tmpl, name);
                if (negate)
                        v = strcmp(v, "on") == 0 ? "off" : "on";
                if (escape)
                        emu_qemu_opt_append(out, v);
                else
                        g_string_append(out, v);
        }
        return true;
}

/* Device property values: "${opt}" alone takes the option's JSON type. */
json_t *emu_template_render(const EmuKind *k, json_t *tmpl, GHashTable *values,
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
        if (!emu_template_expand(k, s, values, false, out, error))
                return NULL;
        return json_string(out->str);
}

static bool load_option(EmuKind *k, const char *name, json_t *spec, GError **error)
{
        static const char *const type_names[] = {
                [EMU_OPT_STRING] = "string", [EMU_OPT_PATH] = "path", [EMU_OPT_ENUM] = "enum",
                [EMU_OPT_BOOL] = "bool",     [EMU_OPT_UINT] = "uint",
        };
        static const char *const option_keys[] = { "type",        "required", "default",
                                                   "values",      "min",      "max",
                                                   "writable-unless", "writable",
                                                   "file-type",   "description", NULL };
        if (!json_is_object(spec))
                return emu_kind_bad(error, k, "option %s: not an object", name);
        g_autofree char *where = g_strdup_printf("option %s", name);
        if (!check_keys(k, spec, where, option_keys, error))
                return false;
        if (!emu_id_valid(name))
                return emu_kind_bad(error, k, "option name '%s' is not %s", name, EMU_ID_RULE);
        if (g_str_equal(name, "restart") || g_str_equal(name, "seccomp") ||
            g_str_equal(name, "socket"))
                return emu_kind_bad(error, k, "option name '%s' is reserved for emud", name);

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
                return emu_kind_bad(error, k, "option %s: unknown type '%s'", name, type ? type : "");
        o->type = (EmuOptType)t;

        o->required = json_is_true(json_object_get(spec, "required"));
        o->description = g_strdup(json_string_value(json_object_get(spec, "description")));
        o->writable_unless =
                g_strdup(json_string_value(json_object_get(spec, "writable-unless")));
        o->writable = json_is_true(json_object_get(spec, "writable"));
        json_t *ftype = json_object_get(spec, "file-type");
        const char *ft = json_string_value(ftype);
        if (ftype && (o->type != EMU_OPT_PATH || !ft ||
                      !g_strv_contains((const char *const[]){ "file", "directory", NULL }, ft)))
                return emu_kind_bad(error, k, "option %s: 'file-type' is \"file\" or "
                                    "\"directory\", for a path", name);
        o->directory = ft && g_str_equal(ft, "directory");
        if ((o->writable || o->writable_unless) && o->type != EMU_OPT_PATH)
                return emu_kind_bad(error, k, "option %s: only a path can be writable", name);
        if (o->writable && o->writable_unless)
                return emu_kind_bad(error, k, "option %s: 'writable' and 'writable-unless' "
                                    "exclude each other", name);

        json_t *values = json_object_get(spec, "values");
        if (o->type == EMU_OPT_ENUM) {
                if (!json_is_array(values) || json_array_size(values) == 0)
                        return emu_kind_bad(error, k, "option %s: enum needs a 'values' list", name);
                o->values = g_new0(char *, json_array_size(values) + 1);
                size_t i;
                json_t *v;
                json_array_foreach (values, i, v) {
                        if (!json_is_string(v))
                                return emu_kind_bad(error, k, "option %s: values must be strings", name);
                        o->values[i] = g_strdup(json_string_value(v));
                }
        }
        if (o->type == EMU_OPT_UINT) {
                json_t *min = json_object_get(spec, "min"), *max = json_object_get(spec, "max");
                if (min && (!json_is_integer(min) || json_integer_value(min) < 0))
                        return emu_kind_bad(error, k, "option %s: min must be a whole number", name);
                if (max && (!json_is_integer(max) || json_integer_value(max) < 0))
                        return emu_kind_bad(error, k, "option %s: max must be a whole number", name);
                o->min = min ? (guint64)json_integer_value(min) : 0;
                o->max = max ? (guint64)json_integer_value(max) : G_MAXINT64;
                if (o->min > o->max)
                        return emu_kind_bad(error, k, "option %s: min is above max", name);
        }

        json_t *def = json_object_get(spec, "default");
        if (def) {
                if (!json_is_string(def))
                        return emu_kind_bad(error, k, "option %s: default must be a string", name);
                g_autoptr(GError) err = NULL;
                o->default_value = emu_option_normalise(k, o, json_string_value(def), &err);
                if (!o->default_value)
                        return emu_kind_bad(error, k, "option %s: bad default: %s", name, err->message);
        }
        return true;
}

static bool load_fds(EmuKind *k, json_t *fds, GError **error)
{
        if (fds && !json_is_array(fds))
                return emu_kind_bad(error, k, "'fds' must be a list");
        k->n_fds = json_array_size(fds);
        k->fds = g_new0(EmuFdRole, k->n_fds ? k->n_fds : 1);
        for (size_t i = 0; i < k->n_fds; i++) {
                const char *role = json_string_value(json_array_get(fds, i));
                size_t r;
                for (r = 0; r < _EMU_FD_MAX; r++)
                        if (role && strcmp(role, fd_role_names[r]) == 0)
                                break;
                if (r == _EMU_FD_MAX)
                        return emu_kind_bad(error, k, "unknown fd role '%s'", role ? role : "");
                for (size_t j = 0; j < i; j++)
                        if (k->fds[j] == (EmuFdRole)r)
                                return emu_kind_bad(error, k, "fd role '%s' listed twice", role);
                k->fds[i] = (EmuFdRole)r;
        }
        return true;
}

static bool load_sandbox(EmuKind *k, json_t *sb, GError **error)
{
        static const char *const keys[] = { "steps",    "policy",   "nofile",
                                            "nproc",    "memory-max", "pids-max",
                                            "namespace-root", NULL };
        if (sb && !json_is_object(sb))
                return emu_kind_bad(error, k, "'sandbox' must be an object");
        if (sb && !check_keys(k, sb, "sandbox", keys, error))
                return false;
        json_t *steps = json_object_get(sb, "steps"), *policy = json_object_get(sb, "policy");
        if ((steps && !json_is_string(steps)) || (policy && !json_is_string(policy)))
                return emu_kind_bad(error, k, "sandbox: 'steps' and 'policy' must be strings");
        k->sandbox_steps = g_strdup(steps ? json_string_value(steps) : "all");
        k->policy = g_strdup(policy ? json_string_value(policy) : k->name);
        json_t *nsroot = json_object_get(sb, "namespace-root");
        if (nsroot && !json_is_boolean(nsroot))
                return emu_kind_bad(error, k, "sandbox: 'namespace-root' must be a boolean");
        k->namespace_root = json_is_true(nsroot);
        if (!emu_id_valid(k->policy))
                return emu_kind_bad(error, k, "sandbox: policy name '%s' is not %s", k->policy,
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
                        return emu_kind_bad(error, k, "sandbox: '%s' must be a positive integer",
                                   numbers[i].key);
                *numbers[i].slot = v ? (guint64)json_integer_value(v) : 0;
        }
        return true;
}

void emu_qemu_opt_append(GString *out, const char *value)
{
        for (const char *c = value; *c; c++) {
                if (*c == ',')
                        g_string_append_c(out, ',');
                g_string_append_c(out, *c);
        }
}

int emu_kind_fd_number(const EmuKind *k, EmuFdRole role)
{
        for (size_t i = 0; i < k->n_fds; i++)
                if (k->fds[i] == role)
                        return 3 + (int)i;
        return -1;
}

static bool kind_has_fd(const EmuKind *k, EmuFdRole role)
{
        return emu_kind_fd_number(k, role) >= 0;
}

static bool load_readiness(EmuKind *k, json_t *root, GError **error)
{
        static const char *const names[] = { [EMU_READY_QMP_GREETING] = "qmp-greeting",
                                             [EMU_READY_OUTPUT] = "output",
                                             [EMU_READY_EXEC] = "exec",
                                             [EMU_READY_LISTENING] = "listening" };
        const char *readiness = json_string_value(json_object_get(root, "readiness"));
        size_t r;
        for (r = 0; r < G_N_ELEMENTS(names); r++)
                if (readiness && g_str_equal(readiness, names[r]))
                        break;
        if (r == G_N_ELEMENTS(names))
                return emu_kind_bad(error, k, "'readiness' must be \"qmp-greeting\", "
                                    "\"output\", \"exec\" or \"listening\"");
        k->readiness = (EmuReadiness)r;
        json_t *line = json_object_get(root, "ready-output");
        if ((k->readiness == EMU_READY_OUTPUT) != (line != NULL) ||
            (line && (!json_is_string(line) || !*json_string_value(line))))
                return emu_kind_bad(error, k, "'ready-output' (a non-empty string) goes with "
                                    "readiness output, and only with it");
        k->ready_output = g_strdup(json_string_value(line));
        if (k->readiness == EMU_READY_QMP_GREETING && !kind_has_fd(k, EMU_FD_MONITOR))
                return emu_kind_bad(error, k, "readiness qmp-greeting needs the 'monitor' fd");
        json_t *listener = json_object_get(root, "listener");
        const char *who = json_string_value(listener);
        if (listener && (!who || (!g_str_equal(who, "emud") && !g_str_equal(who, "emulator"))))
                return emu_kind_bad(error, k, "'listener' must be \"emud\" or \"emulator\"");
        k->emulator_listens = who && g_str_equal(who, "emulator");
        if (k->readiness == EMU_READY_LISTENING && !k->emulator_listens)
                return emu_kind_bad(error, k, "readiness listening needs \"listener\": "
                                    "\"emulator\"");
        if (k->emulator_listens && kind_has_fd(k, EMU_FD_LISTEN))
                return emu_kind_bad(error, k, "the 'listen' fd is emud's listening socket; "
                                    "with \"listener\": \"emulator\" use ${socket}");
        return true;
}

/* Probes: {"probe": [args of binary], "output": "text it prints", "reason": "..."}. */
static bool load_requires(EmuKind *k, json_t *req, GError **error)
{
        static const char *const keys[] = { "probe", "output", "reason", NULL };
        if (req && !json_is_array(req))
                return emu_kind_bad(error, k, "'requires' must be a list");
        size_t i;
        json_t *r;
        json_array_foreach (req, i, r) {
                if (!json_is_object(r))
                        return emu_kind_bad(error, k, "'requires' entries are objects with "
                                            "probe, output and reason");
                if (!check_keys(k, r, "requires", keys, error))
                        return false;
                json_t *probe = json_object_get(r, "probe");
                bool ok = json_is_array(probe) && json_is_string(json_object_get(r, "output")) &&
                          json_is_string(json_object_get(r, "reason"));
                size_t j;
                json_t *a;
                json_array_foreach (probe, j, a)
                        ok = ok && json_is_string(a);
                if (!ok)
                        return emu_kind_bad(error, k, "requires: 'probe' is a list of strings, "
                                            "'output' and 'reason' are strings");
        }
        k->requires = req ? json_incref(req) : json_array();
        return true;
}

static bool load_device(EmuKind *k, json_t *device, GError **error)
{
        static const char *const keys[] = { "driver",          "chardev-property",
                                            "fd-property",     "socket-property",
                                            "hotplug",         "reconnect",
                                            "properties",      NULL };
        if (!json_is_object(device))
                return emu_kind_bad(error, k, "'device' must be an object");
        if (!check_keys(k, device, "device", keys, error))
                return false;
        const char *driver = json_string_value(json_object_get(device, "driver"));
        const char *chardev = json_string_value(json_object_get(device, "chardev-property"));
        const char *fdprop = json_string_value(json_object_get(device, "fd-property"));
        const char *sockprop = json_string_value(json_object_get(device, "socket-property"));
        json_t *props = json_object_get(device, "properties");
        json_t *hotplug = json_object_get(device, "hotplug");
        json_t *reconnect = json_object_get(device, "reconnect");
        if (!driver || (!!chardev + !!fdprop + !!sockprop) != 1 ||
            (props && !json_is_object(props)) ||
            (hotplug && !json_is_boolean(hotplug)) || (reconnect && !json_is_boolean(reconnect)))
                return emu_kind_bad(error, k, "'device' needs 'driver', one of "
                                    "'chardev-property', 'fd-property' and 'socket-property', "
                                    "and optionally "
                                    "'properties' (an object), 'hotplug' and 'reconnect' "
                                    "(booleans)");
        if (sockprop && !k->emulator_listens)
                return emu_kind_bad(error, k, "device: 'socket-property' needs \"listener\": "
                                    "\"emulator\"");
        if (fdprop && !kind_has_fd(k, EMU_FD_REMOTE))
                return emu_kind_bad(error, k, "device: 'fd-property' needs the 'remote' fd");
        if (chardev && kind_has_fd(k, EMU_FD_REMOTE))
                return emu_kind_bad(error, k, "device: a kind with the 'remote' fd has no "
                                    "chardev; use 'fd-property'");
        k->driver = g_strdup(driver);
        k->chardev_property = g_strdup(chardev);
        k->fd_property = g_strdup(fdprop);
        k->socket_property = g_strdup(sockprop);
        k->hotplug = !hotplug || json_is_true(hotplug);
        k->reconnect = !reconnect || json_is_true(reconnect);
        k->device_properties = props ? json_incref(props) : json_object();
        const char *pname;
        json_t *pval;
        json_object_foreach (k->device_properties, pname, pval) {
                /* emud sets these itself; a descriptor must not override them. */
                if (g_str_equal(pname, "driver") || g_str_equal(pname, "id") ||
                    g_str_equal(pname, "bus") || g_strcmp0(pname, chardev) == 0 ||
                    g_strcmp0(pname, fdprop) == 0 || g_strcmp0(pname, sockprop) == 0)
                        return emu_kind_bad(error, k, "device property '%s' is set by emud",
                                            pname);
                g_autoptr(json_t) checked = emu_template_render(k, pval, NULL, error);
                if (!checked)
                        return false;
        }
        return true;
}

EmuKind *emu_kind_load_data(const char *data, const char *origin, GError **error)
{
        g_autoptr(EmuKind) k = g_new0(EmuKind, 1);
        k->refs = 1;
        k->origin = g_strdup(origin);
        k->options = g_ptr_array_new_with_free_func((GDestroyNotify)option_spec_free);

        json_error_t jerr;
        g_autoptr(json_t) root = json_loads(data, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                emu_kind_bad(error, k, "line %d: %s", jerr.line, jerr.text);
                return NULL;
        }
        if (!json_is_object(root)) {
                emu_kind_bad(error, k, "not a JSON object");
                return NULL;
        }
        static const char *const top_keys[] = { "kind",     "description",  "binary",
                                                "package",  "fds",          "readiness",
                                                "ready-output", "requires", "options",
                                                "listener",
                                                "argv",     "device",       "restart",
                                                "sandbox",  NULL };
        if (!check_keys(k, root, "descriptor", top_keys, error))
                return NULL;

        const char *name = json_string_value(json_object_get(root, "kind"));
        if (!name || !emu_id_valid(name)) {
                emu_kind_bad(error, k, "'kind' must be %s", EMU_ID_RULE);
                return NULL;
        }
        k->name = g_strdup(name);
        k->description = g_strdup(json_string_value(json_object_get(root, "description")));

        const char *binary = json_string_value(json_object_get(root, "binary"));
        if (!binary || binary[0] != '/') {
                emu_kind_bad(error, k, "'binary' must be an absolute path");
                return NULL;
        }
        k->binary = g_strdup(binary);
        k->package = g_strdup(json_string_value(json_object_get(root, "package")));
        if (!load_requires(k, json_object_get(root, "requires"), error))
                return NULL;

        static const char *const restarts[] = { "no", "on-failure", "always", NULL };
        json_t *restart = json_object_get(root, "restart");
        if (restart && !g_strv_contains(restarts, json_string_value(restart) ?: "")) {
                emu_kind_bad(error, k, "'restart' must be \"no\", \"on-failure\" or \"always\"");
                return NULL;
        }
        k->restart = g_strdup(restart ? json_string_value(restart) : "on-failure");
        if (!load_sandbox(k, json_object_get(root, "sandbox"), error))
                return NULL;

        if (!load_fds(k, json_object_get(root, "fds"), error))
                return NULL;

        if (!load_readiness(k, root, error))
                return NULL;

        json_t *options = json_object_get(root, "options");
        if (options && !json_is_object(options)) {
                emu_kind_bad(error, k, "'options' must be an object");
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
                        emu_kind_bad(error, k, "option %s: writable-unless must name a bool option",
                            o->name);
                        return NULL;
                }
        }

        json_t *argv = json_object_get(root, "argv");
        if (!json_is_array(argv)) {
                emu_kind_bad(error, k, "'argv' must be a list of strings");
                return NULL;
        }
        k->argv = g_new0(char *, json_array_size(argv) + 1);
        for (size_t i = 0; i < json_array_size(argv); i++) {
                const char *a = json_string_value(json_array_get(argv, i));
                if (!a) {
                        emu_kind_bad(error, k, "'argv' must be a list of strings");
                        return NULL;
                }
                k->argv[i] = g_strdup(a);
                g_autoptr(GString) scratch = g_string_new(NULL);
                if (!emu_template_expand(k, a, NULL, true, scratch, error))
                        return NULL;
        }

        if (!load_device(k, json_object_get(root, "device"), error))
                return NULL;
        if (!emu_kind_restartable(k) && !g_str_equal(k->restart, "no")) {
                emu_kind_bad(error, k, "its device cannot take a new process (a 'remote' fd, "
                             "or \"reconnect\": false): set \"restart\": \"no\"");
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
                                                            (GDestroyNotify)emu_kind_unref);
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
                        emu_kind_unref(k);
                        return NULL;
                }
                g_hash_table_insert(kinds, k->name, k);
        }
        return g_steal_pointer(&kinds);
}
