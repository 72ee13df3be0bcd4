/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of qmp-client against a scripted server on a socketpair:
 * pipelining and id matching, oob negotiation, forwarding with fds (and the
 * fd barrier), observers, timeouts, and what happens when the peer leaves.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include "emu-error.h"
#include "emu-util.h"
#include "fake-qmp.h"
#include "qmp-client.h"

typedef struct {
        GString *log;
        bool ready;
        bool closed;
        int replies;
} Record;

static void on_ready(EmuQmpClient *c, json_t *greeting, void *userdata)
{
        Record *r = userdata;
        r->ready = json_object_get(greeting, "QMP") != NULL;
}

static void on_closed(EmuQmpClient *c, const GError *reason, void *userdata)
{
        Record *r = userdata;
        g_string_append(r->log, "owner-closed;");
        r->closed = true;
}

static const EmuQmpClientOps ops = { .ready = on_ready, .closed = on_closed };

static void on_reply(EmuQmpClient *c, json_t *ret, const GError *error, void *userdata)
{
        GString *log = userdata;
        if (error)
                g_string_append_printf(log, "err:%s;", error->message);
        else
                g_string_append_printf(log, "ret:%s;",
                                       json_string_value(json_object_get(ret, "v")));
}

static void on_raw(EmuQmpClient *c, json_t *reply, const GError *error, void *userdata)
{
        GString *log = userdata;
        if (error) {
                g_string_append(log, "raw-err;");
                return;
        }
        g_autofree char *text = json_dumps(reply, JSON_COMPACT);
        g_string_append_printf(log, "raw:%s;", text);
}

static void on_obs_event(EmuQmpClient *c, json_t *msg, void *userdata)
{
        GString *log = userdata;
        g_string_append_printf(log, "event:%s:%d;",
                               json_string_value(json_object_get(msg, "event")),
                               json_object_get(msg, "timestamp") != NULL);
}

static void on_obs_closed(EmuQmpClient *c, const GError *reason, void *userdata)
{
        GString *log = userdata;
        g_string_append(log, "observer-closed;");
}

static const EmuQmpObserverOps obs_ops = { .event = on_obs_event, .closed = on_obs_closed };

static EmuQmpClient *connect_pair(Server *s, Record *rec, bool oob)
{
        int sv[2];
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        s->fd = sv[0];
        s->buf = g_string_new(NULL);
        EmuQmpClient *c = emu_qmp_client_new(sv[1], "test", 0, &ops, rec);
        server_write(s, oob ? "{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}\r\n"
                            : "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
        g_autoptr(json_t) caps = server_read(s);
        g_assert_cmpstr(json_string_value(json_object_get(caps, "execute")), ==,
                        "qmp_capabilities");
        json_t *enable = json_object_get(json_object_get(caps, "arguments"), "enable");
        g_assert_cmpint(oob, ==, enable != NULL);
        server_write(s, "{\"return\": {}}\r\n");
        spin_until(&rec->ready);
        g_assert_cmpint(emu_qmp_client_has_oob(c), ==, oob);
        return c;
}

static void test_pipeline(void)
{
        Server s = { 0 };
        Record rec = { .log = g_string_new(NULL) };
        /* Declared first so that it outlives the client, whose free tells the observer. */
        g_autoptr(GString) log = g_string_new(NULL);
        g_autoptr(EmuQmpClient) c = connect_pair(&s, &rec, true);
        emu_qmp_client_add_observer(c, &obs_ops, log);

        emu_qmp_client_execute(c, "a", NULL, 0, on_reply, log);
        emu_qmp_client_execute(c, "b", NULL, 0, on_reply, log);
        emu_qmp_client_forward(c, json_pack("{s:s, s:s}", "exec-oob", "c", "id", "client-id"),
                               NULL, 0, on_raw, log);
        /* All three are on the wire before any reply: pipelined, with the client's own ids. */
        g_autoptr(json_t) a = server_read(&s);
        g_autoptr(json_t) b = server_read(&s);
        g_autoptr(json_t) o = server_read(&s);
        g_assert_cmpstr(json_string_value(json_object_get(o, "exec-oob")), ==, "c");
        g_assert_true(json_is_integer(json_object_get(o, "id")));
        json_int_t ia = json_integer_value(json_object_get(a, "id"));
        json_int_t ib = json_integer_value(json_object_get(b, "id"));
        json_int_t io = json_integer_value(json_object_get(o, "id"));
        g_assert_true(ia != ib && ib != io);

        /* Out of order, with an event and an unknown id in between. */
        g_autofree char *script = g_strdup_printf(
                "{\"return\": {\"v\": \"oob\"}, \"id\": %lld}\r\n"
                "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\r\n"
                "{\"return\": {}, \"id\": 999}\r\n"
                "{\"id\": %lld, \"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"nope\"}}\r\n"
                "{\"return\": {\"v\": \"B\"}, \"id\": %lld}\r\n",
                (long long)io, (long long)ia, (long long)ib);
        server_write(&s, script);
        for (int i = 0; i < 200 && !strstr(log->str, "ret:B"); i++)
                g_main_context_iteration(NULL, FALSE);
        g_autofree char *want = g_strdup_printf(
                "raw:{\"return\":{\"v\":\"oob\"},\"id\":%lld};event:STOP:1;err:nope;ret:B;",
                (long long)io);
        g_assert_cmpstr(log->str, ==, want);
        close(s.fd);
        g_string_free(s.buf, TRUE);
        g_string_free(rec.log, TRUE);
}

static void test_fds(void)
{
        Server s = { 0 };
        Record rec = { .log = g_string_new(NULL) };
        /* Declared first so that it outlives the client, whose free tells the observer. */
        g_autoptr(GString) log = g_string_new(NULL);
        g_autoptr(EmuQmpClient) c = connect_pair(&s, &rec, false);
        int p1[2], p2[2];
        g_assert_cmpint(pipe2(p1, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(p2, O_CLOEXEC), ==, 0);
        emu_qmp_client_forward(c, json_pack("{s:s}", "execute", "getfd"), &p1[0], 1, on_raw, log);
        emu_qmp_client_forward(c, json_pack("{s:s}", "execute", "add-fd"), &p2[0], 1, on_raw, log);
        g_autoptr(json_t) first = server_read(&s);
        g_assert_cmpuint(s.n_fds, ==, 1);
        /* The second fd waits until QEMU consumed the first. */
        g_assert_true(server_quiet(&s));
        g_autofree char *r1 = g_strdup_printf("{\"return\": {}, \"id\": %lld}\r\n",
                                              (long long)json_integer_value(
                                                      json_object_get(first, "id")));
        server_write(&s, r1);
        g_autoptr(json_t) second = server_read(&s);
        g_assert_cmpuint(s.n_fds, ==, 2);
        g_assert_cmpstr(json_string_value(json_object_get(second, "execute")), ==, "add-fd");
        /* The fds that arrived are the pipes' read ends. */
        g_assert_cmpint(write(p1[1], "x", 1), ==, 1);
        char ch = 0;
        g_assert_cmpint(read(s.fds[0], &ch, 1), ==, 1);
        g_assert_cmpint(ch, ==, 'x');
        for (size_t i = 0; i < s.n_fds; i++)
                close(s.fds[i]);
        close(p1[1]);
        close(p2[1]);
        close(s.fd);
        g_string_free(s.buf, TRUE);
        g_string_free(rec.log, TRUE);
}

static void test_timeout_and_close(void)
{
        Server s = { 0 };
        Record rec = { .log = g_string_new(NULL) };
        EmuQmpClient *c = connect_pair(&s, &rec, false);
        emu_qmp_client_add_observer(c, &obs_ops, rec.log);
        g_autoptr(GString) log = g_string_new(NULL);
        emu_qmp_client_execute(c, "slow", NULL, 20, on_reply, log);
        g_autoptr(json_t) slow = server_read(&s);
        for (int i = 0; i < 5000 && !log->len; i++) {
                g_main_context_iteration(NULL, FALSE);
                g_usleep(200);
        }
        g_assert_nonnull(strstr(log->str, "err:test: no reply to slow within 20 ms"));
        g_string_truncate(log, 0);
        emu_qmp_client_execute(c, "next", NULL, 0, on_reply, log);
        guint64 h = emu_qmp_client_forward(c, json_pack("{s:s}", "execute", "cancelled"), NULL,
                                           0, on_raw, log);
        emu_qmp_client_cancel(c, h);
        g_autoptr(json_t) next = server_read(&s);
        g_autoptr(json_t) cancelled = server_read(&s); /* already sent: cancel mutes it */
        /* The late reply to "slow" must not reach "next"; the cancelled one reaches nobody. */
        g_autofree char *late = g_strdup_printf(
                "{\"return\": {\"v\": \"late\"}, \"id\": %lld}\r\n"
                "{\"return\": {}, \"id\": %lld}\r\n",
                (long long)json_integer_value(json_object_get(slow, "id")),
                (long long)json_integer_value(json_object_get(cancelled, "id")));
        server_write(&s, late);
        g_assert_true(server_quiet(&s));
        g_assert_cmpstr(log->str, ==, "");

        /* The peer leaves: the pending command fails, observers hear first. */
        close(s.fd);
        spin_until(&rec.closed);
        g_assert_cmpstr(log->str, ==, "err:test: connection closed;");
        g_assert_cmpstr(rec.log->str, ==, "observer-closed;owner-closed;");
        emu_qmp_client_free(c);
        g_string_free(s.buf, TRUE);
        g_string_free(rec.log, TRUE);
}

static void test_free_tells_observer(void)
{
        Server s = { 0 };
        Record rec = { .log = g_string_new(NULL) };
        EmuQmpClient *c = connect_pair(&s, &rec, false);
        g_autoptr(GString) log = g_string_new(NULL);
        guint gone = emu_qmp_client_add_observer(c, &obs_ops, log);
        guint stays = emu_qmp_client_add_observer(c, &obs_ops, log);
        emu_qmp_client_remove_observer(c, gone);
        (void)stays;
        emu_qmp_client_free(c);
        g_assert_cmpstr(log->str, ==, "observer-closed;");
        close(s.fd);
        g_string_free(s.buf, TRUE);
        g_string_free(rec.log, TRUE);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/qmp-client/pipeline", test_pipeline);
        g_test_add_func("/qmp-client/fds", test_fds);
        g_test_add_func("/qmp-client/timeout-and-close", test_timeout_and_close);
        g_test_add_func("/qmp-client/free-tells-observer", test_free_tells_observer);
        return g_test_run();
}
