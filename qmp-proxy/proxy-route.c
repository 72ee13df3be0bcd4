/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxy-route: what the QMP proxy does with one message from a client.
 *
 * The checks and error texts follow QEMU 7.2's monitor (qmp_dispatch and
 * qmp_capabilities), because a client must not be able to tell the proxy
 * from QEMU. Whatever QEMU can judge itself (unknown commands, bad
 * arguments, qmp_capabilities after negotiation) is forwarded so that QEMU's
 * own answer reaches the client; only what the proxy must decide (the
 * negotiation, which happened upstream long ago, and exec-oob for a client
 * that did not enable oob) is answered here.
 *
 * fd names: QEMU keeps getfd names per monitor connection, but all clients
 * share the proxy's one connection. So a client's names are prefixed with
 * "emud-proxy.<client>." upstream, in these places only:
 *   getfd, closefd:                  fdname
 *   device_add:                      fd, vhostfd
 *   object-add:                      fd
 *   netdev_add:                      fd, vhostfd, and each element of fds, vhostfds (a:b:c)
 *   chardev-add:                     backend.data.addr.data.str when addr.type is "fd"
 *   migrate, migrate-incoming:       uri "fd:NAME"
 * Values starting with a digit are fd numbers in QEMU's process, not names,
 * and pass unchanged, as do names in any other place. Names starting with
 * "emud-proxy." are refused so that no client reaches another's fds.
 */
#include <errno.h>
#include <string.h>

#include "emu-util.h"
#include "proxy-route.h"

json_t *proxy_error_reply(json_t *id, const char *cls, const char *desc)
{
        json_t *reply = json_object();
        if (id)
                json_object_set(reply, "id", id);
        json_object_set_new(reply, "error", json_pack("{s:s, s:s}", "class", cls, "desc", desc));
        return reply;
}

static void set_error(ProxyRoute *r, const char *cls, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void set_error(ProxyRoute *r, const char *cls, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *desc = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        r->action = PROXY_ROUTE_REPLY;
        json_decref(r->reply);
        r->reply = proxy_error_reply(r->id, cls, desc);
}

/* QEMU's qmp_dispatch_check_obj(): returns false with r->reply set. */
static bool check_obj(json_t *msg, bool allow_oob, ProxyRoute *r, const char **ret_cmd,
                      bool *ret_oob)
{
        const char *key;
        json_t *value;
        const char *cmd = NULL;
        json_object_foreach(msg, key, value) {
                if (strcmp(key, "execute") == 0 ||
                    (strcmp(key, "exec-oob") == 0 && allow_oob)) {
                        if (!json_is_string(value)) {
                                set_error(r, "GenericError",
                                          "QMP input member '%s' must be a string", key);
                                return false;
                        }
                        if (cmd) {
                                set_error(r, "GenericError",
                                          "QMP input member 'execute' clashes with 'exec-oob'");
                                return false;
                        }
                        cmd = json_string_value(value);
                        *ret_oob = key[4] == '-';
                } else if (strcmp(key, "arguments") == 0) {
                        if (!json_is_object(value)) {
                                set_error(r, "GenericError",
                                          "QMP input member 'arguments' must be an object");
                                return false;
                        }
                } else if (strcmp(key, "id") != 0) {
                        set_error(r, "GenericError", "QMP input member '%s' is unexpected", key);
                        return false;
                }
        }
        if (!cmd) {
                set_error(r, "GenericError", "QMP input lacks member 'execute'");
                return false;
        }
        *ret_cmd = cmd;
        return true;
}

/* qmp_capabilities in negotiation mode, with QEMU's argument checks. */
static void negotiate(const ProxyRouteCtx *ctx, json_t *args, ProxyRoute *r)
{
        const char *key;
        json_t *value;
        bool oob = false;
        json_object_foreach(args, key, value) {
                if (strcmp(key, "enable") != 0) {
                        set_error(r, "GenericError", "Parameter '%s' is unexpected", key);
                        return;
                }
        }
        json_t *enable = json_object_get(args, "enable");
        if (enable && !json_is_array(enable)) {
                set_error(r, "GenericError",
                          "Invalid parameter type for 'enable', expected: array");
                return;
        }
        size_t i;
        json_array_foreach(enable, i, value) {
                if (!json_is_string(value)) {
                        set_error(r, "GenericError",
                                  "Invalid parameter type for 'null', expected: string");
                        return;
                }
                if (strcmp(json_string_value(value), "oob") != 0) {
                        set_error(r, "GenericError", "Parameter 'null' does not accept value '%s'",
                                  json_string_value(value));
                        return;
                }
                oob = true;
        }
        if (oob && !ctx->oob_offered) {
                set_error(r, "GenericError", "Capability 'oob' not available");
                return;
        }
        r->action = PROXY_ROUTE_REPLY;
        r->reply = json_object();
        json_object_set_new(r->reply, "return", json_object());
        if (r->id)
                json_object_set(r->reply, "id", r->id);
        r->negotiated = true;
        r->enable_oob = oob;
}

/* Rewrite one fd name in place. Returns false (with r->reply set) for a reserved name. */
static bool rewrite_name(const ProxyRouteCtx *ctx, json_t *holder, const char *key,
                         ProxyRoute *r)
{
        json_t *v = json_object_get(holder, key);
        const char *name = json_string_value(v);
        if (!name || !name[0] || g_ascii_isdigit(name[0]))
                return true;
        if (g_str_has_prefix(name, PROXY_FDNAME_PREFIX)) {
                set_error(r, "GenericError", "fd name '%s' is reserved by the QMP proxy", name);
                return false;
        }
        json_object_set_new(holder, key, json_sprintf("%s%s", ctx->fd_prefix, name));
        r->rewrote = true;
        return true;
}

/* netdev_add's fds=a:b:c */
static bool rewrite_name_list(const ProxyRouteCtx *ctx, json_t *holder, const char *key,
                              ProxyRoute *r)
{
        const char *list = json_string_value(json_object_get(holder, key));
        if (!list)
                return true;
        g_auto(GStrv) parts = g_strsplit(list, ":", -1);
        for (char **p = parts; *p; p++) {
                if (!(*p)[0] || g_ascii_isdigit((*p)[0]))
                        continue;
                if (g_str_has_prefix(*p, PROXY_FDNAME_PREFIX)) {
                        set_error(r, "GenericError",
                                  "fd name '%s' is reserved by the QMP proxy", *p);
                        return false;
                }
                char *renamed = g_strconcat(ctx->fd_prefix, *p, NULL);
                g_free(*p);
                *p = renamed;
                r->rewrote = true;
        }
        g_autofree char *joined = g_strjoinv(":", parts);
        json_object_set_new(holder, key, json_string(joined));
        return true;
}

static bool rewrite_fdnames(const ProxyRouteCtx *ctx, const char *cmd, json_t *args,
                            ProxyRoute *r)
{
        if (!args)
                return true;
        if (strcmp(cmd, "getfd") == 0 || strcmp(cmd, "closefd") == 0) {
                const char *name = json_string_value(json_object_get(args, "fdname"));
                if (name && cmd[0] == 'g')
                        r->getfd_name = g_strdup(name);
                else if (name)
                        r->closefd_name = g_strdup(name);
                return rewrite_name(ctx, args, "fdname", r);
        }
        if (strcmp(cmd, "device_add") == 0)
                return rewrite_name(ctx, args, "fd", r) && rewrite_name(ctx, args, "vhostfd", r);
        if (strcmp(cmd, "object-add") == 0)
                return rewrite_name(ctx, args, "fd", r);
        if (strcmp(cmd, "netdev_add") == 0)
                return rewrite_name(ctx, args, "fd", r) &&
                       rewrite_name(ctx, args, "vhostfd", r) &&
                       rewrite_name_list(ctx, args, "fds", r) &&
                       rewrite_name_list(ctx, args, "vhostfds", r);
        if (strcmp(cmd, "migrate") == 0 || strcmp(cmd, "migrate-incoming") == 0) {
                const char *uri = json_string_value(json_object_get(args, "uri"));
                if (!uri || !g_str_has_prefix(uri, "fd:"))
                        return true;
                g_autoptr(json_t) name = json_pack("{s:s}", "n", uri + 3);
                if (!rewrite_name(ctx, name, "n", r))
                        return false;
                json_object_set_new(args, "uri", json_sprintf("fd:%s", json_string_value(
                                                                       json_object_get(name, "n"))));
                return true;
        }
        if (strcmp(cmd, "chardev-add") == 0) {
                json_t *addr = json_object_get(
                        json_object_get(json_object_get(args, "backend"), "data"), "addr");
                if (g_strcmp0(json_string_value(json_object_get(addr, "type")), "fd") == 0)
                        return rewrite_name(ctx, json_object_get(addr, "data"), "str", r);
        }
        return true;
}

void proxy_route(const ProxyRouteCtx *ctx, json_t *msg, ProxyRoute *r)
{
        memset(r, 0, sizeof(*r));
        if (!json_is_object(msg)) {
                set_error(r, "GenericError", "QMP input must be a JSON object");
                return;
        }
        r->id = json_incref(json_object_get(msg, "id"));

        const char *cmd = NULL;
        bool oob = false;
        if (!check_obj(msg, ctx->negotiated && ctx->oob, r, &cmd, &oob))
                return;
        r->command = g_strdup(cmd);
        json_t *args = json_object_get(msg, "arguments");

        if (!ctx->negotiated) {
                if (strcmp(cmd, "qmp_capabilities") != 0) {
                        set_error(r, "CommandNotFound",
                                  "Expecting capabilities negotiation with 'qmp_capabilities'");
                        return;
                }
                negotiate(ctx, args, r);
                return;
        }

        if (ctx->extensions && g_hash_table_contains(ctx->extensions, cmd)) {
                if (oob) {
                        set_error(r, "GenericError", "The command %s does not support OOB",
                                  cmd);
                        return;
                }
                r->action = PROXY_ROUTE_EXTENSION;
                r->arguments = args ? json_deep_copy(args) : json_object();
                return;
        }

        /* The client's id stays here; QEMU sees the proxy's. */
        g_autoptr(json_t) up = json_deep_copy(msg);
        json_object_del(up, "id");
        if (!rewrite_fdnames(ctx, cmd, json_object_get(up, "arguments"), r))
                return;
        r->action = PROXY_ROUTE_UPSTREAM;
        r->upstream = g_steal_pointer(&up);
        r->wants_fd = strcmp(cmd, "getfd") == 0 || strcmp(cmd, "add-fd") == 0;
        r->list_extensions = strcmp(cmd, "query-commands") == 0;
}

void proxy_route_clear(ProxyRoute *r)
{
        json_decref(r->id);
        json_decref(r->reply);
        json_decref(r->upstream);
        json_decref(r->arguments);
        g_free(r->getfd_name);
        g_free(r->closefd_name);
        g_free(r->command);
        memset(r, 0, sizeof(*r));
}

/* Cut every occurrence of prefix out of s. */
static char *strip_all(const char *s, const char *prefix)
{
        GString *out = g_string_new(NULL);
        size_t plen = strlen(prefix);
        const char *hit;
        while ((hit = strstr(s, prefix))) {
                g_string_append_len(out, s, hit - s);
                s = hit + plen;
        }
        g_string_append(out, s);
        return g_string_free(out, FALSE);
}

void proxy_reply_restore(json_t *reply, json_t *id, const char *fd_prefix)
{
        /* Keep QEMU's member order: "id" first on errors, last on returns. */
        json_t *error = json_object_get(reply, "error");
        if (error && id) {
                g_autoptr(json_t) rest = json_copy(reply);
                json_object_clear(reply);
                json_object_set(reply, "id", id);
                json_object_del(rest, "id");
                json_object_update(reply, rest);
        } else if (id) {
                json_object_set(reply, "id", id);
        } else {
                json_object_del(reply, "id");
        }
        const char *desc = json_string_value(json_object_get(error, "desc"));
        if (desc && fd_prefix && strstr(desc, fd_prefix)) {
                g_autofree char *plain = strip_all(desc, fd_prefix);
                json_object_set_new(error, "desc", json_string(plain));
        }
}

json_t *proxy_bad_input_reply(int r, const char *why)
{
        g_autofree char *desc = NULL;
        if (r == -EMSGSIZE)
                desc = g_strdup_printf("QMP input too large: %s", why ? why : "");
        else
                desc = g_strdup_printf("JSON parse error, %s", why ? why : "invalid input");
        return proxy_error_reply(NULL, "GenericError", desc);
}
