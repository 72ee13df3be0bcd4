/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The proxy over two upstream monitors when one of them goes away while
 * QEMU stays up. Real QEMU cannot drop one monitor's connection on its own,
 * so both monitors are scripted servers on socketpairs (fake-qmp.h); the
 * spreading itself is tested against real QEMU in test-proxy-monitors.py.
 *
 * Checked: clients are pinned to the monitor with fewest clients; a command
 * in flight on the lost monitor gets a GenericError with the client's id;
 * the client's next command goes to the remaining monitor, and it now gets
 * that monitor's events; the other client never notices.
 */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <glib/gstdio.h>

#include "emu-socket.h"
#include "emu-util.h"
#include "fake-qmp.h"
#include "proxy.h"

static const char greeting[] = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n";

static EmuQmpClient *upstream(Server *s)
{
        int sv[2];
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        *s = (Server){ .fd = sv[0], .buf = g_string_new(NULL) };
        static const EmuQmpClientOps no_ops = { 0 };
        EmuQmpClient *c = emu_qmp_client_new(sv[1], "fake", 0, &no_ops, NULL);
        server_write(s, greeting);
        g_autoptr(json_t) caps = server_read(s);
        g_assert_cmpstr(json_string_value(json_object_get(caps, "execute")), ==,
                        "qmp_capabilities");
        g_autofree char *reply = g_strdup_printf(
                "{\"return\": {}, \"id\": %lld}\r\n",
                (long long)json_integer_value(json_object_get(caps, "id")));
        server_write(s, reply);
        return c;
}

/* A negotiated proxy client. */
static void client(Server *s, const char *path)
{
        int fd = emu_unix_connect(path);
        g_assert_cmpint(fd, >=, 0);
        *s = (Server){ .fd = fd, .buf = g_string_new(NULL) };
        g_autoptr(json_t) greet = server_read(s);
        g_assert_nonnull(json_object_get(greet, "QMP"));
        server_write(s, "{\"execute\": \"qmp_capabilities\"}\n");
        g_autoptr(json_t) ok = server_read(s);
        g_assert_nonnull(json_object_get(ok, "return"));
}

/* The upstream s receives the command; answer it with a return that names it. */
static void answer(Server *s, const char *tag)
{
        g_autoptr(json_t) cmd = server_read(s);
        g_autofree char *reply = g_strdup_printf(
                "{\"return\": {\"by\": \"%s\"}, \"id\": %lld}\r\n", tag,
                (long long)json_integer_value(json_object_get(cmd, "id")));
        server_write(s, reply);
}

static void expect_return(Server *c, const char *id, const char *by)
{
        g_autoptr(json_t) r = server_read(c);
        g_assert_cmpstr(json_string_value(json_object_get(r, "id")), ==, id);
        g_assert_cmpstr(json_string_value(json_object_get(json_object_get(r, "return"), "by")),
                        ==, by);
}

static void free_server(Server *s)
{
        if (s->fd >= 0)
                emu_close(s->fd);
        g_string_free(s->buf, TRUE);
}

static void test_lost_monitor(void)
{
        g_autofree char *dir = g_dir_make_tmp("test-proxy-links-XXXXXX", NULL);
        g_autofree char *path = g_build_filename(dir, "proxy.sock", NULL);
        Server p, x, a, b;
        EmuQmpClient *up_p = upstream(&p);
        EmuQmpClient *up_x = upstream(&x);
        EmuQmpProxy *proxy = emu_qmp_proxy_new(up_p, path, NULL, NULL);
        g_assert_nonnull(proxy);
        emu_qmp_proxy_add_upstream(proxy, up_x);
        while (!emu_qmp_client_is_ready(up_p) || !emu_qmp_client_is_ready(up_x))
                g_main_context_iteration(NULL, TRUE);

        client(&a, path); /* both monitors have no client: the first one, P */
        client(&b, path); /* P has one: X */
        server_write(&a, "{\"execute\": \"query-status\", \"id\": \"a1\"}\n");
        answer(&p, "P");
        expect_return(&a, "a1", "P");
        server_write(&b, "{\"execute\": \"query-status\", \"id\": \"b1\"}\n");
        answer(&x, "X");
        expect_return(&b, "b1", "X");

        /* B's next command is in flight on X when X's connection goes. */
        server_write(&b, "{\"execute\": \"query-status\", \"id\": \"b2\"}\n");
        g_autoptr(json_t) lost_cmd = server_read(&x);
        x.fd = emu_close(x.fd);
        g_autoptr(json_t) err = server_read(&b);
        g_assert_cmpstr(json_string_value(json_object_get(err, "id")), ==, "b2");
        json_t *e = json_object_get(err, "error");
        g_assert_cmpstr(json_string_value(json_object_get(e, "class")), ==, "GenericError");
        g_assert_nonnull(strstr(json_string_value(json_object_get(e, "desc")), "went away"));

        /* B carries on over P, and now gets P's events; A never noticed. */
        server_write(&b, "{\"execute\": \"query-status\", \"id\": \"b3\"}\n");
        answer(&p, "P");
        expect_return(&b, "b3", "P");
        server_write(&p, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
                         "\"event\": \"STOP\"}\r\n");
        for (Server *c = &a; c; c = c == &a ? &b : NULL) {
                g_autoptr(json_t) ev = server_read(c);
                g_assert_cmpstr(json_string_value(json_object_get(ev, "event")), ==, "STOP");
        }
        server_write(&a, "{\"execute\": \"query-status\", \"id\": \"a2\"}\n");
        answer(&p, "P");
        expect_return(&a, "a2", "P");
        g_assert_true(server_quiet(&a) && server_quiet(&b));

        emu_qmp_proxy_free(proxy);
        emu_qmp_client_free(up_x);
        emu_qmp_client_free(up_p);
        free_server(&a);
        free_server(&b);
        free_server(&x);
        free_server(&p);
        g_rmdir(dir);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/proxy-links/lost-monitor", test_lost_monitor);
        return g_test_run();
}
