/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emuctl: the command-line client of emud's D-Bus API.
 *
 * Exit codes: 0 success, 1 an error reported by emud (or emud unreachable),
 * 2 a usage error. Errors are one line on stderr that a person can act on.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "emu-bus.h"
#include "emu-cleanup.h"
#include "emu-id.h"
#include "emu-util.h"
#include "emud-build.h"
#include "events.h"

#define BUS_NAME EMU_BUS_NAME
#define MANAGER_PATH EMU_BUS_MANAGER_PATH
#define MANAGER_IFACE EMU_BUS_MANAGER_IFACE
#define EMULATOR_IFACE EMU_BUS_EMULATOR_IFACE

/* Spawn and kill wait for QEMU and the guest; emud bounds each step itself. */
#define LONG_CALL_USEC (10ull * 60 * 1000 * 1000)

enum { EXIT_OK = 0, EXIT_DAEMON = 1, EXIT_USAGE = 2 };

typedef struct {
        sd_bus *bus;
        bool user;
        bool json;
} Ctl;

static int usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("emuctl: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputs("\nTry 'emuctl --help'.\n", stderr);
        va_end(ap);
        return EXIT_USAGE;
}

/* With --json, errors are one JSON object on stderr: {"error": NAME, "message": TEXT}. */
static int report_error(Ctl *c, const char *name, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static int report_error(Ctl *c, const char *name, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        if (c->json) {
                g_autoptr(json_t) obj = json_pack("{s:s, s:s}", "error", name, "message", msg);
                json_dumpf(obj, stderr, JSON_COMPACT);
                fputc('\n', stderr);
        } else {
                fprintf(stderr, "emuctl: %s\n", msg);
        }
        return EXIT_DAEMON;
}

static int report_bus_error(Ctl *c, const sd_bus_error *error, int r)
{
        if (c->json && sd_bus_error_is_set(error))
                return report_error(c, error->name, "%s",
                                    error->message ? error->message : error->name);
        if (sd_bus_error_has_names(error, "org.freedesktop.DBus.Error.ServiceUnknown",
                                   "org.freedesktop.DBus.Error.NameHasNoOwner"))
                fprintf(stderr, "emuctl: emud is not running (nobody owns %s on the %s bus)\n",
                        BUS_NAME, c->user ? "session" : "system");
        else if (sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED))
                fprintf(stderr, "emuctl: access denied: on the system bus only root and the "
                                "members of the group emud may do this (see emud(8))\n");
        else if (sd_bus_error_is_set(error))
                fprintf(stderr, "emuctl: %s\n", error->message ? error->message : error->name);
        else
                fprintf(stderr, "emuctl: D-Bus call failed: %s\n", g_strerror(-r));
        return EXIT_DAEMON;
}

/* Call a Manager1 method; args are appended by the caller-provided function. */
static int call(Ctl *c, const char *path, const char *iface, const char *method,
                uint64_t usec, sd_bus_message **ret_reply,
                int (*append)(sd_bus_message *m, void *userdata), void *userdata)
{
        g_autoptr(sd_bus_message) m = NULL;
        emu_auto_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, path, iface, method);
        if (r >= 0 && append)
                r = append(m, userdata);
        if (r < 0) {
                fprintf(stderr, "emuctl: cannot build the request: %s\n", g_strerror(-r));
                return EXIT_DAEMON;
        }
        r = sd_bus_call(c->bus, m, usec, &error, ret_reply);
        if (r < 0)
                return report_bus_error(c, &error, r);
        return EXIT_OK;
}

static int append_strings(sd_bus_message *m, void *userdata)
{
        char **strv = userdata;
        for (; *strv; strv++) {
                int r = sd_bus_message_append(m, "s", *strv);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int call_strings(Ctl *c, const char *method, uint64_t usec, sd_bus_message **ret_reply,
                        const char *a, const char *b)
{
        const char *args[] = { a, b, NULL };
        return call(c, MANAGER_PATH, MANAGER_IFACE, method, usec, ret_reply, append_strings,
                    args);
}

typedef struct {
        const char *name;
        GPtrArray *qmp; /* const char *, NULL-terminated */
} VmAddArgs;

static int append_vm_add(sd_bus_message *m, void *userdata)
{
        VmAddArgs *a = userdata;
        int r = sd_bus_message_append(m, "s", a->name);
        if (r < 0)
                return r;
        return sd_bus_message_append_strv(m, (char **)a->qmp->pdata);
}

static int cmd_vm_add(Ctl *c, int argc, char **argv)
{
        const char *name = NULL;
        g_autoptr(GPtrArray) qmp = g_ptr_array_new();
        for (int i = 1; i < argc; i++) {
                if (g_str_equal(argv[i], "--qmp") && i + 1 < argc)
                        g_ptr_array_add(qmp, argv[++i]);
                else if (g_str_has_prefix(argv[i], "--qmp="))
                        g_ptr_array_add(qmp, argv[i] + 6);
                else if (!name && argv[i][0] != '-')
                        name = argv[i];
                else
                        return usage_error("vm-add: unexpected argument '%s'", argv[i]);
        }
        if (!name || qmp->len == 0)
                return usage_error("usage: emuctl vm-add NAME --qmp PATH [--qmp PATH...]");
        const char *primary = g_ptr_array_index(qmp, 0);
        int r;
        if (qmp->len == 1) {
                r = call_strings(c, "AddVM", LONG_CALL_USEC, NULL, name, primary);
        } else {
                g_ptr_array_add(qmp, NULL);
                VmAddArgs a = { .name = name, .qmp = qmp };
                r = call(c, MANAGER_PATH, MANAGER_IFACE, "AddVMWithMonitors", LONG_CALL_USEC,
                         NULL, append_vm_add, &a);
                g_ptr_array_remove_index(qmp, qmp->len - 1);
        }
        if (r != EXIT_OK)
                return r;
        g_autoptr(sd_bus_message) reply = NULL;
        const char *proxy = NULL;
        if (call_strings(c, "QmpSocket", 0, &reply, name, NULL) == EXIT_OK)
                (void)sd_bus_message_read(reply, "s", &proxy);
        if (c->json) {
                g_autoptr(json_t) o = json_pack("{s:s, s:s, s:s?}", "name", name, "qmp", primary,
                                                "qmp-proxy", proxy);
                if (qmp->len > 1) {
                        json_t *extra = json_array();
                        for (guint i = 1; i < qmp->len; i++)
                                json_array_append_new(extra,
                                                      json_string(g_ptr_array_index(qmp, i)));
                        json_object_set_new(o, "qmp-extra", extra);
                }
                json_dumpf(o, stdout, JSON_INDENT(2));
                putchar('\n');
        } else {
                printf("VM %s added (QEMU's QMP %s", name, primary);
                if (qmp->len > 1)
                        printf("; %u more monitors for the QMP proxy", qmp->len - 1);
                printf(")\n");
                if (proxy)
                        printf("QMP proxy for management tools: %s\n", proxy);
        }
        return EXIT_OK;
}

static int cmd_qmp_path(Ctl *c, int argc, char **argv)
{
        if (argc != 2)
                return usage_error("usage: emuctl qmp-path VM");
        g_autoptr(sd_bus_message) reply = NULL;
        int r = call_strings(c, "QmpSocket", 0, &reply, argv[1], NULL);
        const char *path;
        if (r == EXIT_OK && sd_bus_message_read(reply, "s", &path) > 0)
                printf("%s\n", path);
        return r;
}

static int cmd_vm_remove(Ctl *c, int argc, char **argv)
{
        if (argc != 2)
                return usage_error("usage: emuctl vm-remove NAME");
        /* Prepared emulators of a VM that never came are stopped first. */
        int r = call_strings(c, "RemoveVM", LONG_CALL_USEC, NULL, argv[1], NULL);
        if (r == EXIT_OK && !c->json)
                printf("VM %s removed\n", argv[1]);
        return r;
}

typedef struct {
        const char *vm, *kind, *id;
        char **options;
        char **qmp;              /* prepare: where the VM's QEMU will listen */
        GPtrArray *names, *opts, *qmp_paths; /* own the strings above */
} SpawnArgs;

static void spawn_args_clear(SpawnArgs *a)
{
        g_clear_pointer(&a->names, g_ptr_array_unref);
        g_clear_pointer(&a->opts, g_ptr_array_unref);
        g_clear_pointer(&a->qmp_paths, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SpawnArgs, spawn_args_clear)

static int append_options(sd_bus_message *m, char **options)
{
        int r = sd_bus_message_open_container(m, 'a', "{ss}");
        for (char **o = options; r >= 0 && *o; o++) {
                const char *eq = strchr(*o, '=');
                g_autofree char *key = g_strndup(*o, eq - *o);
                r = sd_bus_message_append(m, "{ss}", key, eq + 1);
        }
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int append_spawn(sd_bus_message *m, void *userdata)
{
        SpawnArgs *a = userdata;
        int r = sd_bus_message_append(m, "sss", a->vm, a->kind, a->id);
        return r < 0 ? r : append_options(m, a->options);
}

static int append_prepare(sd_bus_message *m, void *userdata)
{
        SpawnArgs *a = userdata;
        int r = sd_bus_message_append(m, "s", a->vm);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, a->qmp);
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", a->kind, a->id);
        return r < 0 ? r : append_options(m, a->options);
}

/*
 * [--restart=P] [--seccomp=M] [--qmp PATH...] VM KIND ID [KEY=VALUE...]; the
 * first two are emud's own options and travel as restart=P and seccomp=M.
 * --qmp only where with_qmp.
 */
static int parse_spawn(const char *cmd, int argc, char **argv, bool with_qmp, SpawnArgs *a)
{
        a->names = g_ptr_array_new_with_free_func(g_free);
        a->opts = g_ptr_array_new_with_free_func(g_free);
        a->qmp_paths = g_ptr_array_new_with_free_func(g_free);
        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];
                if (g_str_has_prefix(arg, "--restart="))
                        g_ptr_array_add(a->opts, g_strconcat("restart=", arg + 10, NULL));
                else if (g_str_has_prefix(arg, "--seccomp="))
                        g_ptr_array_add(a->opts, g_strconcat("seccomp=", arg + 10, NULL));
                else if (with_qmp && g_str_equal(arg, "--qmp") && i + 1 < argc)
                        g_ptr_array_add(a->qmp_paths, g_strdup(argv[++i]));
                else if (arg[0] == '-' && arg[1] == '-')
                        return usage_error("%s: unknown option '%s'", cmd, arg);
                else if (a->names->len < 3)
                        g_ptr_array_add(a->names, g_strdup(arg));
                else if (!strchr(arg, '=') || arg[0] == '=')
                        return usage_error("%s: '%s' is not KEY=VALUE", cmd, arg);
                else
                        g_ptr_array_add(a->opts, g_strdup(arg));
        }
        if (a->names->len < 3)
                return usage_error("usage: emuctl %s [--restart=POLICY] [--seccomp=MODE]%s VM "
                                   "KIND ID [KEY=VALUE...]",
                                   cmd, with_qmp ? " [--qmp PATH...]" : "");
        g_ptr_array_add(a->opts, NULL);
        g_ptr_array_add(a->qmp_paths, NULL);
        a->vm = g_ptr_array_index(a->names, 0);
        a->kind = g_ptr_array_index(a->names, 1);
        a->id = g_ptr_array_index(a->names, 2);
        a->options = (char **)a->opts->pdata;
        a->qmp = (char **)a->qmp_paths->pdata;
        return EXIT_OK;
}

static int print_status(Ctl *c, const char *id);

static int cmd_spawn(Ctl *c, int argc, char **argv)
{
        g_auto(SpawnArgs) a = { 0 };
        int r = parse_spawn("spawn", argc, argv, false, &a);
        if (r != EXIT_OK)
                return r;
        g_autoptr(sd_bus_message) reply = NULL;
        r = call(c, MANAGER_PATH, MANAGER_IFACE, "Spawn", LONG_CALL_USEC, &reply, append_spawn,
                 &a);
        if (r != EXIT_OK)
                return r;
        return print_status(c, a.id);
}

static int cmd_prepare(Ctl *c, int argc, char **argv)
{
        g_auto(SpawnArgs) a = { 0 };
        int r = parse_spawn("prepare", argc, argv, true, &a);
        if (r != EXIT_OK)
                return r;
        g_autoptr(sd_bus_message) reply = NULL;
        r = call(c, MANAGER_PATH, MANAGER_IFACE, "Prepare", LONG_CALL_USEC, &reply,
                 append_prepare, &a);
        if (r != EXIT_OK)
                return r;
        const char *path = NULL;
        g_auto(GStrv) args = NULL;
        int k = sd_bus_message_read(reply, "o", &path);
        if (k >= 0)
                k = sd_bus_message_read_strv(reply, &args);
        if (k < 0) {
                fprintf(stderr, "emuctl: cannot read emud's reply: %s\n", g_strerror(-k));
                return EXIT_DAEMON;
        }
        if (c->json) {
                g_autoptr(json_t) list = json_array();
                for (char **p = args; *p; p++)
                        json_array_append_new(list, json_string(*p));
                g_autoptr(json_t) obj = json_pack("{s:s, s:s, s:O}", "id", a.id, "object", path,
                                                  "qemu-args", list);
                json_dumpf(obj, stdout, JSON_INDENT(2));
                putchar('\n');
                return EXIT_OK;
        }
        /* One line a shell takes as it is: paste it into QEMU's command line. */
        for (char **p = args; *p; p++) {
                g_autofree char *q = g_shell_quote(*p);
                printf("%s%s", p == args ? "" : " ", q);
        }
        putchar('\n');
        return EXIT_OK;
}

static int cmd_kill(Ctl *c, int argc, char **argv)
{
        if (argc != 2)
                return usage_error("usage: emuctl kill ID");
        int r = call_strings(c, "Kill", LONG_CALL_USEC, NULL, argv[1], NULL);
        if (r == EXIT_OK && !c->json)
                printf("%s stopped and unplugged\n", argv[1]);
        return r;
}

/* The three listings, read and printed through the tables emud writes them with. */
static int print_list(Ctl *c, const EmuBusList *l)
{
        g_autoptr(sd_bus_message) reply = NULL;
        int r = call(c, MANAGER_PATH, MANAGER_IFACE, l->method, 0, &reply, NULL, NULL);
        if (r != EXIT_OK)
                return r;
        g_autoptr(json_t) rows = NULL;
        int k = emu_bus_read_list(reply, l, &rows);
        if (k < 0) {
                fprintf(stderr, "emuctl: bad reply from emud: %s\n", g_strerror(-k));
                return EXIT_DAEMON;
        }
        if (c->json)
                json_dumpf(rows, stdout, JSON_INDENT(2)), putchar('\n');
        else
                emu_bus_print_list(stdout, l, rows);
        return EXIT_OK;
}

static int cmd_list(Ctl *c, int argc, char **argv)
{
        if (argc != 1)
                return usage_error("usage: emuctl list");
        return print_list(c, &emu_bus_list_emulators);
}

static int cmd_vm_list(Ctl *c, int argc, char **argv)
{
        if (argc != 1)
                return usage_error("usage: emuctl vm-list");
        return print_list(c, &emu_bus_list_vms);
}

static int cmd_kinds(Ctl *c, int argc, char **argv)
{
        if (argc != 1)
                return usage_error("usage: emuctl kinds");
        return print_list(c, &emu_bus_list_kinds);
}

static int cmd_reload(Ctl *c, int argc, char **argv)
{
        if (argc != 1)
                return usage_error("usage: emuctl reload");
        int r = call_strings(c, "Reload", LONG_CALL_USEC, NULL, NULL, NULL);
        if (r == EXIT_OK && !c->json)
                printf("kinds reloaded\n");
        return r;
}

static int append_iface(sd_bus_message *m, void *userdata)
{
        return sd_bus_message_append(m, "s", (const char *)userdata);
}

/* Properties.GetAll of one emulator, printed as "Key: value" or as a JSON object. */
static int print_status(Ctl *c, const char *id)
{
        if (!emu_id_valid(id))
                return report_error(c, "org.emud.Error.InvalidId",
                                    "invalid emulator id '%s': use %s", id, EMU_ID_RULE);
        g_autofree char *path = emu_bus_emulator_path(id);
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(sd_bus_message) m = NULL;
        emu_auto_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, path,
                                               "org.freedesktop.DBus.Properties", "GetAll");
        if (r >= 0)
                r = append_iface(m, (void *)EMULATOR_IFACE);
        if (r >= 0)
                r = sd_bus_call(c->bus, m, 0, &error, &reply);
        if (r < 0) {
                if (sd_bus_error_has_names(&error, "org.freedesktop.DBus.Error.UnknownObject",
                                           "org.freedesktop.DBus.Error.UnknownInterface"))
                        return report_error(c, "org.emud.Error.UnknownEmulator",
                                            "no emulator with id '%s'", id);
                return report_bus_error(c, &error, r);
        }
        g_autoptr(json_t) obj = json_object();
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        const char *key;
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *type;
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(reply, NULL, &type);
                if (r >= 0)
                        r = sd_bus_message_enter_container(reply, 'v', type);
                if (r >= 0 && g_str_equal(type, "s")) {
                        const char *s;
                        r = sd_bus_message_read(reply, "s", &s);
                        json_object_set_new(obj, key, json_string(s));
                } else if (r >= 0 && g_str_equal(type, "u")) {
                        uint32_t u;
                        r = sd_bus_message_read(reply, "u", &u);
                        json_object_set_new(obj, key, json_integer(u));
                } else if (r >= 0 && g_str_equal(type, "i")) {
                        int32_t i;
                        r = sd_bus_message_read(reply, "i", &i);
                        json_object_set_new(obj, key, json_integer(i));
                } else if (r >= 0 && g_str_equal(type, "b")) {
                        int b;
                        r = sd_bus_message_read(reply, "b", &b);
                        json_object_set_new(obj, key, json_boolean(b));
                } else if (r >= 0) {
                        r = sd_bus_message_skip(reply, type);
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0) {
                fprintf(stderr, "emuctl: bad reply from emud: %s\n", g_strerror(-r));
                return EXIT_DAEMON;
        }
        if (c->json) {
                json_dumpf(obj, stdout, JSON_INDENT(2));
                putchar('\n');
                return EXIT_OK;
        }
        static const char *const order[] = { "Id",     "VM",       "Kind",
                                             "State",  "Pid",      "Restarts",
                                             "RestartPolicy",      "Device",
                                             "Slot",   "Socket",   "LastExit",
                                             "SeccompMode",        "SeccompReport",
                                             "Reason" };
        for (size_t i = 0; i < G_N_ELEMENTS(order); i++) {
                json_t *v = json_object_get(obj, order[i]);
                if (json_is_string(v) && json_string_length(v) > 0)
                        printf("%14s: %s\n", order[i], json_string_value(v));
                else if (json_is_integer(v))
                        printf("%14s: %" JSON_INTEGER_FORMAT "\n", order[i],
                               json_integer_value(v));
        }
        return EXIT_OK;
}

static int append_bool(sd_bus_message *m, void *userdata)
{
        return sd_bus_message_append(m, "b", (int)GPOINTER_TO_INT(userdata));
}

static int cmd_shutdown(Ctl *c, int argc, char **argv)
{
        bool stop = false;
        for (int i = 1; i < argc; i++) {
                if (g_str_equal(argv[i], "--stop-emulators"))
                        stop = true;
                else
                        return usage_error("usage: emuctl shutdown [--stop-emulators]");
        }
        int r = call(c, MANAGER_PATH, MANAGER_IFACE, "Shutdown", LONG_CALL_USEC, NULL,
                     append_bool, GINT_TO_POINTER(stop));
        if (r == EXIT_OK && !c->json)
                printf("emud stopped%s\n", stop ? " after stopping every emulator"
                                                 : "; emulators keep running");
        return r;
}

static int cmd_policy(Ctl *c, int argc, char **argv)
{
        if (argc != 3 || !g_str_equal(argv[1], "dump"))
                return usage_error("usage: emuctl policy dump ID");
        g_autoptr(sd_bus_message) reply = NULL;
        int r = call_strings(c, "PolicyDump", 0, &reply, argv[2], NULL);
        const char *text;
        if (r == EXIT_OK && sd_bus_message_read(reply, "s", &text) > 0)
                fputs(text, stdout);
        return r;
}

static int cmd_status(Ctl *c, int argc, char **argv)
{
        if (argc != 2)
                return usage_error("usage: emuctl status ID");
        return print_status(c, argv[1]);
}

static int cmd_events(Ctl *c, int argc, char **argv)
{
        if (argc > 2)
                return usage_error("usage: emuctl events [VM]");
        if (argc == 2 && !emu_id_valid(argv[1]))
                return usage_error("invalid VM name '%s'", argv[1]);
        return emuctl_events(c->bus, c->json, argc == 2 ? argv[1] : NULL);
}

typedef struct {
        const char *name;
        int (*run)(Ctl *c, int argc, char **argv);
        const char *help;
} Command;

static const Command commands[] = {
        { "vm-add", cmd_vm_add, "NAME --qmp PATH...  register a running QEMU by its QMP socket(s)" },
        { "vm-remove", cmd_vm_remove, "NAME            forget a VM that has no emulators" },
        { "vm-list", cmd_vm_list, "                  list registered VMs" },
        { "qmp-path", cmd_qmp_path, "VM               print the VM's QMP proxy socket" },
        { "spawn", cmd_spawn,
          "[--restart=no|on-failure|always] [--seccomp=enforce|log|learn]\n"
          "             VM KIND ID [KEY=VALUE...]  start an emulator and hot-plug it" },
        { "prepare", cmd_prepare,
          "[--qmp PATH...] [--restart=...] [--seccomp=...]\n"
          "             VM KIND ID [KEY=VALUE...]  start an emulator for a QEMU not yet\n"
          "                                  running; print QEMU's arguments for it" },
        { "policy", cmd_policy, "dump ID           print the policy learned in learn mode" },
        { "kill", cmd_kill, "ID                     unplug an emulator and stop it" },
        { "list", cmd_list, "                       list emulators" },
        { "status", cmd_status, "ID                   show one emulator" },
        { "kinds", cmd_kinds, "                      list emulator kinds, where each came from\n"
                              "                                  and whether it can run here" },
        { "reload", cmd_reload, "                     read the kinds again (also SIGHUP)" },
        { "shutdown", cmd_shutdown, "[--stop-emulators]  stop emud (emulators keep running)" },
        { "events", cmd_events, "[VM]                 print what emud does as it happens, a line\n"
                                "                                  each (state, restarts, exits, seccomp)" },
};

static void print_help(void)
{
        printf("Usage: emuctl [--user] [--json] COMMAND [ARGS...]\n\n"
               "Control emud, the out-of-process QEMU device emulator daemon.\n\n"
               "Options:\n"
               "  --user      talk to emud on the session bus instead of the system bus\n"
               "  --json      print machine-readable JSON\n"
               "  --version   print the version\n\n"
               "Commands:\n");
        for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
                printf("  %-10s %s\n", commands[i].name, commands[i].help);
        printf("\nExit status: 0 success, 1 error reported by emud, 2 usage error.\n");
}

int main(int argc, char **argv)
{
        Ctl c = { 0 };
        int i = 1;
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (g_str_equal(argv[i], "--user"))
                        c.user = true;
                else if (g_str_equal(argv[i], "--json"))
                        c.json = true;
                else if (g_str_equal(argv[i], "--help") || g_str_equal(argv[i], "-h")) {
                        print_help();
                        return EXIT_OK;
                } else if (g_str_equal(argv[i], "--version")) {
                        printf("emuctl %s\n", EMUD_VERSION);
                        return EXIT_OK;
                } else
                        return usage_error("unknown option '%s'", argv[i]);
        }
        if (i == argc)
                return usage_error("no command given");
        const Command *cmd = NULL;
        for (size_t k = 0; k < G_N_ELEMENTS(commands); k++)
                if (g_str_equal(commands[k].name, argv[i]))
                        cmd = &commands[k];
        if (!cmd)
                return usage_error("unknown command '%s'", argv[i]);

        int r = c.user ? sd_bus_open_user(&c.bus) : sd_bus_open_system(&c.bus);
        if (r < 0) {
                fprintf(stderr, "emuctl: cannot connect to the %s bus: %s\n",
                        c.user ? "session" : "system", g_strerror(-r));
                return EXIT_DAEMON;
        }
        int ret = cmd->run(&c, argc - i, argv + i);
        sd_bus_flush_close_unref(c.bus);
        return ret;
}
