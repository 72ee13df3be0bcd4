/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of proxy-route: QMP's input rules and error classes as QEMU 7.2
 * applies them, negotiation mode, id handling and fd-name rewriting.
 */
#include <errno.h>

#include "emu-util.h"
#include "proxy-route.h"

static GHashTable *extensions(void)
{
        GHashTable *h = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_add(h, (gpointer) "__org.emud_spawn");
        return h;
}

/* Route text (one JSON value) and return the route; the caller clears it. */
static void route(bool negotiated, bool oob, const char *text, ProxyRoute *r)
{
        g_autoptr(GHashTable) ext = extensions();
        ProxyRouteCtx ctx = {
                .negotiated = negotiated, .oob = oob, .oob_offered = true,
                .fd_prefix = "emud-proxy.7.", .extensions = ext,
        };
        g_autoptr(json_t) msg = json_loads(text, JSON_DECODE_ANY, NULL);
        g_assert_nonnull(msg);
        proxy_route(&ctx, msg, r);
}

static void assert_error(bool negotiated, bool oob, const char *text, const char *cls,
                         const char *desc)
{
        ProxyRoute r;
        route(negotiated, oob, text, &r);
        g_assert_cmpint(r.action, ==, PROXY_ROUTE_REPLY);
        json_t *err = json_object_get(r.reply, "error");
        g_assert_cmpstr(json_string_value(json_object_get(err, "class")), ==, cls);
        g_assert_cmpstr(json_string_value(json_object_get(err, "desc")), ==, desc);
        g_assert_true(json_equal(json_object_get(r.reply, "id"), r.id) ||
                      (!r.id && !json_object_get(r.reply, "id")));
        proxy_route_clear(&r);
}

static void test_input_rules(void)
{
        assert_error(true, false, "[1]", "GenericError", "QMP input must be a JSON object");
        assert_error(true, false, "42", "GenericError", "QMP input must be a JSON object");
        assert_error(true, false, "{\"id\": 1}", "GenericError",
                     "QMP input lacks member 'execute'");
        assert_error(true, false, "{\"execute\": 1}", "GenericError",
                     "QMP input member 'execute' must be a string");
        assert_error(true, false, "{\"execute\": \"x\", \"arguments\": []}", "GenericError",
                     "QMP input member 'arguments' must be an object");
        assert_error(true, false, "{\"execute\": \"x\", \"foo\": 1}", "GenericError",
                     "QMP input member 'foo' is unexpected");
        /* exec-oob is only a member for clients that enabled oob */
        assert_error(true, false, "{\"exec-oob\": \"x\"}", "GenericError",
                     "QMP input member 'exec-oob' is unexpected");
        assert_error(true, true, "{\"exec-oob\": \"x\", \"execute\": \"x\"}", "GenericError",
                     "QMP input member 'execute' clashes with 'exec-oob'");
        assert_error(true, true, "{\"exec-oob\": \"__org.emud_spawn\"}", "GenericError",
                     "The command __org.emud_spawn does not support OOB");
}

static void test_negotiation(void)
{
        assert_error(false, false, "{\"execute\": \"query-status\", \"id\": 1}",
                     "CommandNotFound",
                     "Expecting capabilities negotiation with 'qmp_capabilities'");
        assert_error(false, false,
                     "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": \"oob\"}}",
                     "GenericError", "Invalid parameter type for 'enable', expected: array");
        assert_error(false, false,
                     "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"x\"]}}",
                     "GenericError", "Parameter 'null' does not accept value 'x'");
        assert_error(false, false,
                     "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"foo\": 1}}",
                     "GenericError", "Parameter 'foo' is unexpected");

        ProxyRoute r;
        route(false, false,
              "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]},"
              " \"id\": {\"any\": [null]}}",
              &r);
        g_assert_cmpint(r.action, ==, PROXY_ROUTE_REPLY);
        g_assert_true(r.negotiated && r.enable_oob);
        g_autoptr(json_t) want = json_loads("{\"return\": {}, \"id\": {\"any\": [null]}}", 0, NULL);
        g_assert_true(json_equal(r.reply, want));
        proxy_route_clear(&r);

        /* After negotiation QEMU answers qmp_capabilities itself. */
        route(true, false, "{\"execute\": \"qmp_capabilities\"}", &r);
        g_assert_cmpint(r.action, ==, PROXY_ROUTE_UPSTREAM);
        proxy_route_clear(&r);
}

static void test_ids(void)
{
        ProxyRoute r;
        route(true, false, "{\"execute\": \"query-status\", \"id\": [1, \"a\"]}", &r);
        g_assert_cmpint(r.action, ==, PROXY_ROUTE_UPSTREAM);
        g_assert_null(json_object_get(r.upstream, "id")); /* QEMU sees only the proxy's */
        g_autoptr(json_t) reply = json_loads("{\"return\": {\"x\": 1}, \"id\": 77}", 0, NULL);
        proxy_reply_restore(reply, r.id, NULL);
        g_autoptr(json_t) want = json_loads("{\"return\": {\"x\": 1}, \"id\": [1, \"a\"]}", 0,
                                            NULL);
        g_assert_true(json_equal(reply, want));
        proxy_route_clear(&r);

        /* no id from the client: none in the reply */
        g_autoptr(json_t) reply2 = json_loads("{\"return\": {}, \"id\": 78}", 0, NULL);
        proxy_reply_restore(reply2, NULL, NULL);
        g_assert_null(json_object_get(reply2, "id"));

        route(true, false, "{\"execute\": \"__org.emud_spawn\", \"id\": 3}", &r);
        g_assert_cmpint(r.action, ==, PROXY_ROUTE_EXTENSION);
        g_assert_true(json_is_object(r.arguments));
        g_assert_cmpint(json_integer_value(r.id), ==, 3);
        proxy_route_clear(&r);

        route(true, false, "{\"execute\": \"query-commands\"}", &r);
        g_assert_true(r.list_extensions);
        proxy_route_clear(&r);
}

static const char *upstream_arg(ProxyRoute *r, const char *path)
{
        json_t *v = json_object_get(r->upstream, "arguments");
        g_auto(GStrv) parts = g_strsplit(path, ".", -1);
        for (char **p = parts; *p && v; p++)
                v = json_object_get(v, *p);
        return json_string_value(v);
}

static void test_fdnames(void)
{
        ProxyRoute r;
        route(true, false, "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"a\"}}", &r);
        g_assert_cmpstr(upstream_arg(&r, "fdname"), ==, "emud-proxy.7.a");
        g_assert_cmpstr(r.getfd_name, ==, "a");
        g_assert_true(r.wants_fd && r.rewrote);
        proxy_route_clear(&r);

        route(true, false, "{\"execute\": \"add-fd\"}", &r);
        g_assert_true(r.wants_fd && !r.rewrote);
        proxy_route_clear(&r);

        route(true, false,
              "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"x\", \"fd\": \"a\","
              " \"vhostfd\": \"5\"}}",
              &r);
        g_assert_cmpstr(upstream_arg(&r, "fd"), ==, "emud-proxy.7.a");
        g_assert_cmpstr(upstream_arg(&r, "vhostfd"), ==, "5"); /* an fd number: unchanged */
        g_assert_cmpstr(upstream_arg(&r, "driver"), ==, "x");
        proxy_route_clear(&r);

        route(true, false,
              "{\"execute\": \"netdev_add\", \"arguments\": {\"type\": \"tap\", \"id\": \"n\","
              " \"fds\": \"a:3:b\"}}",
              &r);
        g_assert_cmpstr(upstream_arg(&r, "fds"), ==, "emud-proxy.7.a:3:emud-proxy.7.b");
        proxy_route_clear(&r);

        route(true, false,
              "{\"execute\": \"chardev-add\", \"arguments\": {\"id\": \"c\", \"backend\": "
              "{\"type\": \"socket\", \"data\": {\"addr\": {\"type\": \"fd\", \"data\": "
              "{\"str\": \"s\"}}}}}}",
              &r);
        g_assert_cmpstr(upstream_arg(&r, "backend.data.addr.data.str"), ==, "emud-proxy.7.s");
        proxy_route_clear(&r);

        route(true, false,
              "{\"execute\": \"object-add\", \"arguments\": {\"qom-type\": \"t\", \"id\": \"o\","
              " \"fd\": \"f\"}}",
              &r);
        g_assert_cmpstr(upstream_arg(&r, "fd"), ==, "emud-proxy.7.f");
        proxy_route_clear(&r);

        /* Other commands' fields are not names. */
        route(true, false, "{\"execute\": \"qom-set\", \"arguments\": {\"fd\": \"f\"}}", &r);
        g_assert_cmpstr(upstream_arg(&r, "fd"), ==, "f");
        g_assert_false(r.rewrote);
        proxy_route_clear(&r);

        assert_error(true, false,
                     "{\"execute\": \"closefd\", \"arguments\": {\"fdname\": \"emud-proxy.1.a\"}}",
                     "GenericError", "fd name 'emud-proxy.1.a' is reserved by the QMP proxy");

        /* QEMU's error texts name the client's own fd names. */
        g_autoptr(json_t) reply = json_loads(
                "{\"id\": 9, \"error\": {\"class\": \"GenericError\", \"desc\": "
                "\"File descriptor named 'emud-proxy.7.a' not found\"}}",
                0, NULL);
        g_autoptr(json_t) id = json_string("mine");
        proxy_reply_restore(reply, id, "emud-proxy.7.");
        g_assert_cmpstr(json_string_value(json_object_get(json_object_get(reply, "error"),
                                                          "desc")),
                        ==, "File descriptor named 'a' not found");
        g_assert_cmpstr(json_string_value(json_object_get(reply, "id")), ==, "mine");
}

static void test_bad_input(void)
{
        g_autoptr(json_t) a = proxy_bad_input_reply(-EMSGSIZE, "message larger than 5 bytes");
        g_autoptr(json_t) b = proxy_bad_input_reply(-EBADMSG, "malformed JSON: x");
        g_assert_cmpstr(json_string_value(json_object_get(json_object_get(a, "error"), "class")),
                        ==, "GenericError");
        g_assert_null(json_object_get(b, "id"));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/proxy-route/input-rules", test_input_rules);
        g_test_add_func("/proxy-route/negotiation", test_negotiation);
        g_test_add_func("/proxy-route/ids", test_ids);
        g_test_add_func("/proxy-route/fdnames", test_fdnames);
        g_test_add_func("/proxy-route/bad-input", test_bad_input);
        return g_test_run();
}
