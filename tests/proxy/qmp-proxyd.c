/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qmp-proxyd: the QMP proxy library on its own, for tests and benchmarks.
 *
 * It does what emud will do for one VM, without the daemon: connect to
 * QEMU's monitor, serve the proxy socket, register extension commands, and
 * (with --qsd) route __org.emud_emulator-execute to a qemu-storage-daemon
 * monitor and wrap that monitor's events as __org.emud_EMULATOR_EVENT.
 *
 *   qmp-proxyd --qmp QEMU.sock --listen PROXY.sock [--qsd QSD.sock]
 *              [--max-message N] [--max-in-flight N] [--max-output N]
 *
 * Prints "READY <path>" once the socket listens; SIGTERM/SIGINT end it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib-unix.h>

#include "emu-util.h"
#include "proxy.h"
#include "qmp-client.h"

#define QSD_NAME "qsd0"

typedef struct {
        GMainLoop *loop;
        EmuQmpProxy *proxy;
        EmuQmpClient *qemu;
        EmuQmpClient *qsd;
        const char *qsd_state;
} Daemon;

static void emit_state(Daemon *d, const char *state, const char *reason)
{
        d->qsd_state = state;
        if (!d->proxy)
                return;
        json_t *data = json_pack("{s:s, s:s}", "emulator", QSD_NAME, "state", state);
        if (reason)
                json_object_set_new(data, "reason", json_string(reason));
        emu_qmp_proxy_emit_event(d->proxy, "__org.emud_EMULATOR_STATE", data);
}

static void qsd_ready(EmuQmpClient *c, json_t *greeting, void *userdata)
{
        emit_state(userdata, "running", NULL);
}

static void qsd_event(EmuQmpClient *c, const char *name, json_t *data, void *userdata)
{
        Daemon *d = userdata;
        json_t *wrapped = json_pack("{s:s, s:s}", "emulator", QSD_NAME, "event", name);
        if (data)
                json_object_set(wrapped, "data", data);
        emu_qmp_proxy_emit_event(d->proxy, "__org.emud_EMULATOR_EVENT", wrapped);
}

static void qsd_closed(EmuQmpClient *c, const GError *reason, void *userdata)
{
        emit_state(userdata, "gone", reason ? reason->message : NULL);
}

static const EmuQmpClientOps qsd_ops = {
        .ready = qsd_ready,
        .event = qsd_event,
        .closed = qsd_closed,
};

static void qemu_closed(EmuQmpClient *c, const GError *reason, void *userdata)
{
        g_printerr("qmp-proxyd: QEMU's monitor closed: %s\n", reason ? reason->message : "");
}

static const EmuQmpClientOps qemu_ops = {
        .closed = qemu_closed,
};

static void cmd_query_emulators(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req,
                                void *userdata)
{
        Daemon *d = userdata;
        json_t *list = json_array();
        if (d->qsd)
                json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "id", QSD_NAME, "kind",
                                                      "vhost-user-blk", "state", d->qsd_state));
        emu_qmp_proxy_request_return(req, list);
}

static void on_emulator_reply(EmuQmpClient *c, json_t *reply, const GError *error,
                              void *userdata)
{
        EmuQmpProxyRequest *req = userdata;
        json_t *err = json_object_get(reply, "error");
        if (!reply)
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC, "%s", error->message);
        else if (err)
                emu_qmp_proxy_request_error(
                        req,
                        emu_qmp_error_class_from_name(
                                json_string_value(json_object_get(err, "class"))),
                        "%s", json_string_value(json_object_get(err, "desc")));
        else
                emu_qmp_proxy_request_return(req, json_incref(json_object_get(reply, "return")));
}

static void cmd_emulator_execute(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req,
                                 void *userdata)
{
        Daemon *d = userdata;
        const char *emulator = json_string_value(json_object_get(args, "emulator"));
        const char *execute = json_string_value(json_object_get(args, "execute"));
        json_t *arguments = json_object_get(args, "arguments");
        if (!emulator || !execute || (arguments && !json_is_object(arguments))) {
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_GENERIC,
                                            "emulator and execute (strings) are required, "
                                            "arguments must be an object");
                return;
        }
        if (!d->qsd || !g_str_equal(emulator, QSD_NAME)) {
                emu_qmp_proxy_request_error(req, EMU_QMP_ERROR_DEVICE_NOT_FOUND,
                                            "no emulator named '%s'", emulator);
                return;
        }
        json_t *msg = json_pack("{s:s}", "execute", execute);
        if (arguments)
                json_object_set(msg, "arguments", arguments);
        emu_qmp_client_forward(d->qsd, msg, NULL, 0, on_emulator_reply, req);
}

static gboolean finish_slow(gpointer userdata)
{
        emu_qmp_proxy_request_return(userdata, json_pack("{s:b}", "slow", 1));
        return G_SOURCE_REMOVE;
}

/* Answers after a while: lets tests leave in the middle of an extension command. */
static void cmd_slow(EmuQmpProxy *p, json_t *args, EmuQmpProxyRequest *req, void *userdata)
{
        g_timeout_add(200, finish_slow, req);
}

static gboolean on_signal(gpointer userdata)
{
        g_main_loop_quit(userdata);
        return G_SOURCE_CONTINUE;
}

static EmuQmpClient *connect_client(const char *path, const char *label,
                                    const EmuQmpClientOps *ops, void *userdata)
{
        g_autoptr(GError) err = NULL;
        int fd = emu_qmp_connect_unix(path, &err);
        if (fd < 0) {
                g_printerr("qmp-proxyd: %s\n", err->message);
                exit(1);
        }
        return emu_qmp_client_new(fd, label, 10000, ops, userdata);
}

int main(int argc, char **argv)
{
        g_autofree char *qmp = NULL, *listen = NULL, *qsd = NULL;
        g_auto(GStrv) extra_qmp = NULL;
        gint64 max_message = 0, max_in_flight = 0, max_output = 0;
        GOptionEntry entries[] = {
                { "qmp", 0, 0, G_OPTION_ARG_FILENAME, &qmp, "QEMU's QMP socket", "PATH" },
                { "extra-qmp", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &extra_qmp,
                  "another QMP monitor of the same QEMU, for clients' commands", "PATH" },
                { "listen", 0, 0, G_OPTION_ARG_FILENAME, &listen, "proxy socket", "PATH" },
                { "qsd", 0, 0, G_OPTION_ARG_FILENAME, &qsd, "qsd's QMP socket", "PATH" },
                { "max-message", 0, 0, G_OPTION_ARG_INT64, &max_message, "bytes", "N" },
                { "max-in-flight", 0, 0, G_OPTION_ARG_INT64, &max_in_flight, "commands", "N" },
                { "max-output", 0, 0, G_OPTION_ARG_INT64, &max_output, "bytes", "N" },
                { NULL },
        };
        g_autoptr(GOptionContext) ctx = g_option_context_new("- standalone QMP proxy");
        g_option_context_add_main_entries(ctx, entries, NULL);
        g_autoptr(GError) err = NULL;
        if (!g_option_context_parse(ctx, &argc, &argv, &err) || !qmp || !listen) {
                g_printerr("qmp-proxyd: %s\n", err ? err->message : "--qmp and --listen needed");
                return 2;
        }

        Daemon d = { .loop = g_main_loop_new(NULL, FALSE), .qsd_state = "starting" };
        d.qemu = connect_client(qmp, "QEMU", &qemu_ops, &d);
        EmuQmpProxyConfig cfg;
        emu_qmp_proxy_config_init(&cfg);
        if (max_message > 0)
                cfg.max_message = (size_t)max_message;
        if (max_in_flight > 0)
                cfg.max_in_flight = (guint)max_in_flight;
        if (max_output > 0)
                cfg.max_output = (size_t)max_output;
        d.proxy = emu_qmp_proxy_new(d.qemu, listen, &cfg, &err);
        if (!d.proxy) {
                g_printerr("qmp-proxyd: %s\n", err->message);
                return 1;
        }
        emu_qmp_proxy_add_command(d.proxy, "__org.emud_query-emulators", cmd_query_emulators, &d,
                                  NULL);
        emu_qmp_proxy_add_command(d.proxy, "__org.emud_emulator-execute", cmd_emulator_execute,
                                  &d, NULL);
        emu_qmp_proxy_add_command(d.proxy, "__org.emud_test-slow", cmd_slow, &d, NULL);
        if (qsd)
                d.qsd = connect_client(qsd, "qemu-storage-daemon", &qsd_ops, &d);
        static const EmuQmpClientOps no_ops = { 0 };
        g_autoptr(GPtrArray) extras = g_ptr_array_new_with_free_func(
                (GDestroyNotify)emu_qmp_client_free);
        for (char **path = extra_qmp; path && *path; path++) {
                EmuQmpClient *c = connect_client(*path, *path, &no_ops, NULL);
                g_ptr_array_add(extras, c);
                emu_qmp_proxy_add_upstream(d.proxy, c);
        }

        g_unix_signal_add(SIGTERM, on_signal, d.loop);
        g_unix_signal_add(SIGINT, on_signal, d.loop);
        printf("READY %s\n", listen);
        fflush(stdout);
        g_main_loop_run(d.loop);

        emu_qmp_proxy_free(d.proxy);
        g_clear_pointer(&extras, g_ptr_array_unref);
        emu_qmp_client_free(d.qsd);
        emu_qmp_client_free(d.qemu);
        g_main_loop_unref(d.loop);
        return 0;
}
