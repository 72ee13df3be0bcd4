/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the QMP proxy's routing: a client's byte stream is framed, then each
 * message goes through proxy_route() as one client would drive it, from
 * negotiation mode into command mode. Checks: QEMU never sees the client's
 * id, replies carry exactly the client's id, and every fd name QEMU will
 * look up carries this client's prefix (or is an fd number).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emu-util.h"
#include "proxy-route.h"
#include "qmp-codec.h"

#define PREFIX "emud-proxy.3."

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A name QEMU will look up must be this client's. */
static void check_name(const char *s)
{
        if (s && s[0] && !g_ascii_isdigit(s[0]) && !g_str_has_prefix(s, PREFIX))
                abort();
}

static void check_list(const char *s)
{
        g_auto(GStrv) parts = s ? g_strsplit(s, ":", -1) : NULL;
        for (char **p = parts; p && *p; p++)
                check_name(*p);
}

#define ARG(args, key) json_string_value(json_object_get(args, key))

/* An oracle written apart from proxy-route's table: the fields where QEMU takes fd names. */
static void check_names(const char *cmd, json_t *args)
{
        if (!strcmp(cmd, "getfd") || !strcmp(cmd, "closefd")) {
                check_name(ARG(args, "fdname"));
        } else if (!strcmp(cmd, "device_add")) {
                check_name(ARG(args, "fd"));
                check_name(ARG(args, "vhostfd"));
        } else if (!strcmp(cmd, "object-add")) {
                check_name(ARG(args, "fd"));
        } else if (!strcmp(cmd, "netdev_add")) {
                check_name(ARG(args, "fd"));
                check_name(ARG(args, "vhostfd"));
                check_list(ARG(args, "fds"));
                check_list(ARG(args, "vhostfds"));
        } else if (!strcmp(cmd, "migrate") || !strcmp(cmd, "migrate-incoming")) {
                const char *uri = ARG(args, "uri");
                if (uri && g_str_has_prefix(uri, "fd:"))
                        check_name(uri + 3);
        } else if (!strcmp(cmd, "chardev-add")) {
                json_t *addr = json_object_get(
                        json_object_get(json_object_get(args, "backend"), "data"), "addr");
                if (!g_strcmp0(ARG(addr, "type"), "fd"))
                        check_name(ARG(json_object_get(addr, "data"), "str"));
        }
}

static void one(ProxyRouteCtx *ctx, GHashTable *ext, json_t *msg)
{
        ProxyRoute r;
        proxy_route(ctx, msg, &r);
        switch (r.action) {
        case PROXY_ROUTE_REPLY:
                if (!json_equal(json_object_get(r.reply, "id"), r.id) &&
                    (r.id || json_object_get(r.reply, "id")))
                        abort();
                if (r.negotiated) {
                        ctx->negotiated = true;
                        ctx->oob = r.enable_oob;
                }
                break;
        case PROXY_ROUTE_UPSTREAM: {
                if (json_object_get(r.upstream, "id"))
                        abort();
                check_names(r.command, json_object_get(r.upstream, "arguments"));
                /* QEMU's answer, with the proxy's id and our prefix in its text. */
                g_autoptr(json_t) reply = json_pack("{s:I, s:{s:s, s:s}}", "id", 17, "error",
                                                    "class", "GenericError", "desc",
                                                    "fd '" PREFIX "x' not found");
                proxy_reply_restore(reply, r.id, PREFIX);
                const char *desc = json_string_value(
                        json_object_get(json_object_get(reply, "error"), "desc"));
                if (strstr(desc, PREFIX) ||
                    !(r.id ? json_equal(json_object_get(reply, "id"), r.id)
                           : !json_object_get(reply, "id")))
                        abort();
                break;
        }
        case PROXY_ROUTE_EXTENSION:
                if (!g_hash_table_contains(ext, r.command) || !json_is_object(r.arguments))
                        abort();
                break;
        }
        proxy_route_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        g_autoptr(GHashTable) ext = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_add(ext, (gpointer) "__org.emud_spawn");
        ProxyRouteCtx ctx = { .oob_offered = size > 0 && (data[0] & 1), .fd_prefix = PREFIX,
                              .extensions = ext };
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(65536);
        emu_qmp_decoder_feed(d, data, size);
        emu_qmp_decoder_feed(d, "\n", 1);
        for (;;) {
                json_t *value = NULL;
                int r = emu_qmp_decoder_next_value(d, &value, NULL);
                if (r == 0)
                        break;
                if (r < 0)
                        continue;
                one(&ctx, ext, value);
                json_decref(value);
        }
        return 0;
}
