/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qmp-client: one QMP connection, driven by the GLib main loop.
 *
 * Commands are queued and sent one at a time with an integer id; a reply
 * whose id does not match the command in flight (one that already timed
 * out) is dropped rather than handed to the wrong caller.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <glib-unix.h>

#include "emu-error.h"
#include "emu-util.h"
#include "qmp-client.h"
#include "qmp-codec.h"

/* QEMU's replies (query-qmp-schema is the largest) stay well below this. */
#define QMP_CLIENT_MAX_MESSAGE (64u * 1024 * 1024)

typedef struct {
        char *command;
        json_t *args;
        guint timeout_ms;
        EmuQmpReplyFunc cb;
        void *userdata;
} Pending;

struct EmuQmpClient {
        int fd;
        char *name;
        const EmuQmpClientOps *ops;
        void *userdata;
        EmuQmpDecoder *decoder;
        GByteArray *out;
        guint in_watch;
        guint out_watch;
        guint timer;          /* greeting or in-flight command timeout */
        guint fail_idle;      /* delivers errors for execute() after close */
        GQueue queue;         /* Pending, head is in flight once sent */
        bool in_flight;
        gint64 next_id;
        gint64 flight_id;
        bool negotiating;     /* qmp_capabilities sent, reply awaited */
        bool ready;
        bool closed;
        GQueue failed;        /* Pending to fail from fail_idle */
        unsigned dispatching; /* depth of main-loop callbacks running for this client */
        bool free_pending;    /* freed by its owner from inside a callback */
};

static void client_destroy(EmuQmpClient *c);

/*
 * Every main-loop entry point brackets its work with enter()/leave(), so an
 * owner may free the client from inside any callback: the free is carried
 * out when the outermost entry point returns, and no callback runs after it.
 */
static void enter(EmuQmpClient *c)
{
        c->dispatching++;
}

/* Returns true when the client is gone and must not be touched. */
static bool leave(EmuQmpClient *c)
{
        if (--c->dispatching == 0 && c->free_pending) {
                client_destroy(c);
                return true;
        }
        return false;
}

static bool muted(const EmuQmpClient *c)
{
        return c->free_pending;
}

static void pending_free(Pending *p)
{
        g_free(p->command);
        json_decref(p->args);
        g_free(p);
}

static void client_close(EmuQmpClient *c, GError *reason);
static void send_next(EmuQmpClient *c);

static void clear_source(guint *id)
{
        if (*id) {
                g_source_remove(*id);
                *id = 0;
        }
}

static gboolean on_writable(int fd, GIOCondition cond, gpointer userdata);

static void flush_out(EmuQmpClient *c)
{
        while (c->out->len > 0) {
                ssize_t n = send(c->fd, c->out->data, c->out->len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        if (!c->out_watch)
                                c->out_watch = g_unix_fd_add(c->fd, G_IO_OUT, on_writable, c);
                        return;
                }
                if (n < 0) {
                        client_close(c, g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                                    "%s: write failed: %s", c->name,
                                                    g_strerror(errno)));
                        return;
                }
                g_byte_array_remove_range(c->out, 0, (guint)n);
        }
        clear_source(&c->out_watch);
}

static gboolean on_writable(int fd, GIOCondition cond, gpointer userdata)
{
        EmuQmpClient *c = userdata;
        c->out_watch = 0;
        enter(c);
        flush_out(c);
        leave(c);
        return G_SOURCE_REMOVE;
}

static void queue_message(EmuQmpClient *c, json_t *msg)
{
        size_t len = 0;
        g_autofree char *text = emu_qmp_encode(msg, &len);
        g_byte_array_append(c->out, (const guint8 *)text, len);
        flush_out(c);
}

static gboolean timeout_locked(EmuQmpClient *c);

static gboolean on_timeout(gpointer userdata)
{
        EmuQmpClient *c = userdata;
        enter(c);
        timeout_locked(c);
        leave(c);
        return G_SOURCE_REMOVE;
}

static gboolean timeout_locked(EmuQmpClient *c)
{
        c->timer = 0;
        if (!c->ready) {
                client_close(c, g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                            "%s: no QMP greeting (is another client "
                                            "connected to this monitor?)",
                                            c->name));
                return G_SOURCE_REMOVE;
        }
        /* The reply may still come; its id will no longer match and it is dropped. */
        Pending *p = g_queue_pop_head(&c->queue);
        c->in_flight = false;
        g_autoptr(GError) err = g_error_new(EMU_ERROR, EMU_ERROR_TIMEOUT,
                                            "%s: no reply to %s within %u ms", c->name,
                                            p->command, p->timeout_ms);
        if (p->cb && !muted(c))
                p->cb(c, NULL, err, p->userdata);
        pending_free(p);
        send_next(c);
        return G_SOURCE_REMOVE;
}

static void send_next(EmuQmpClient *c)
{
        if (!c->ready || c->closed || c->in_flight || g_queue_is_empty(&c->queue))
                return;
        Pending *p = g_queue_peek_head(&c->queue);
        g_autoptr(json_t) msg = json_pack("{s:s, s:I}", "execute", p->command, "id",
                                          (json_int_t)c->next_id);
        if (p->args)
                json_object_set(msg, "arguments", p->args);
        c->flight_id = c->next_id++;
        c->in_flight = true;
        if (p->timeout_ms)
                c->timer = g_timeout_add(p->timeout_ms, on_timeout, c);
        queue_message(c, msg);
}

static void handle_reply(EmuQmpClient *c, json_t *msg)
{
        json_t *id = json_object_get(msg, "id");
        if (!c->in_flight || !json_is_integer(id) || json_integer_value(id) != c->flight_id)
                return; /* a reply to a command that timed out */
        clear_source(&c->timer);
        c->in_flight = false;
        Pending *p = g_queue_pop_head(&c->queue);

        json_t *error = json_object_get(msg, "error");
        if (error) {
                const char *cls = json_string_value(json_object_get(error, "class"));
                const char *desc = json_string_value(json_object_get(error, "desc"));
                g_autoptr(GError) err = g_error_new(EMU_QMP_ERROR,
                                                    emu_qmp_error_class_from_name(cls), "%s",
                                                    desc ? desc : "unknown QMP error");
                if (p->cb && !muted(c))
                        p->cb(c, NULL, err, p->userdata);
        } else if (p->cb && !muted(c)) {
                p->cb(c, json_object_get(msg, "return"), NULL, p->userdata);
        }
        pending_free(p);
        send_next(c);
}

static void handle_message(EmuQmpClient *c, json_t *msg)
{
        if (!c->ready && !c->negotiating) {
                if (!json_object_get(msg, "QMP")) {
                        client_close(c, g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                                    "%s: peer did not send a QMP greeting",
                                                    c->name));
                        return;
                }
                c->negotiating = true;
                g_autoptr(json_t) caps = json_pack("{s:s}", "execute", "qmp_capabilities");
                queue_message(c, caps);
                return;
        }
        if (c->negotiating) {
                if (json_object_get(msg, "event"))
                        return;
                if (!json_object_get(msg, "return")) {
                        client_close(c, g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                                    "%s: capabilities negotiation failed",
                                                    c->name));
                        return;
                }
                c->negotiating = false;
                c->ready = true;
                clear_source(&c->timer);
                if (c->ops->ready && !muted(c))
                        c->ops->ready(c, msg, c->userdata);
                send_next(c);
                return;
        }
        const char *event = json_string_value(json_object_get(msg, "event"));
        if (event) {
                if (c->ops->event && !muted(c))
                        c->ops->event(c, event, json_object_get(msg, "data"), c->userdata);
                return;
        }
        handle_reply(c, msg);
}

static gboolean read_locked(EmuQmpClient *c);

static gboolean on_readable(int fd, GIOCondition cond, gpointer userdata)
{
        EmuQmpClient *c = userdata;
        enter(c);
        gboolean keep = read_locked(c);
        if (leave(c))
                return G_SOURCE_REMOVE;
        return keep;
}

static gboolean read_locked(EmuQmpClient *c)
{
        char buf[16384];
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return G_SOURCE_CONTINUE;
        if (n <= 0) {
                c->in_watch = 0;
                client_close(c, g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                            "%s: connection closed%s%s", c->name,
                                            n < 0 ? ": " : "", n < 0 ? g_strerror(errno) : ""));
                return G_SOURCE_REMOVE;
        }
        emu_qmp_decoder_feed(c->decoder, buf, (size_t)n);
        for (;;) {
                json_t *msg = NULL;
                g_autofree char *why = NULL;
                int r = emu_qmp_decoder_next(c->decoder, &msg, &why);
                if (r == 0)
                        break;
                if (r < 0) {
                        c->in_watch = 0;
                        client_close(c, g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                                    "%s: protocol error: %s", c->name, why));
                        return G_SOURCE_REMOVE;
                }
                handle_message(c, msg);
                json_decref(msg);
                if (c->closed || muted(c)) {
                        /* client_close() or the owner's free removed this watch */
                        c->in_watch = 0;
                        return G_SOURCE_REMOVE;
                }
        }
        return G_SOURCE_CONTINUE;
}

static gboolean on_fail_idle(gpointer userdata)
{
        EmuQmpClient *c = userdata;
        c->fail_idle = 0;
        enter(c);
        Pending *p;
        while ((p = g_queue_pop_head(&c->failed))) {
                g_autoptr(GError) err = g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                                    "%s: connection closed", c->name);
                if (p->cb && !muted(c))
                        p->cb(c, NULL, err, p->userdata);
                pending_free(p);
        }
        leave(c);
        return G_SOURCE_REMOVE;
}

static void client_close(EmuQmpClient *c, GError *reason)
{
        g_autoptr(GError) err = reason;
        if (c->closed)
                return;
        c->closed = true;
        c->ready = false;
        clear_source(&c->in_watch);
        clear_source(&c->out_watch);
        clear_source(&c->timer);
        c->fd = emu_close(c->fd);

        Pending *p;
        while ((p = g_queue_pop_head(&c->queue))) {
                if (p->cb && !muted(c))
                        p->cb(c, NULL, err, p->userdata);
                pending_free(p);
        }
        if (c->ops->closed && !muted(c))
                c->ops->closed(c, err, c->userdata);
}

EmuQmpClient *emu_qmp_client_new(int fd, const char *name, guint greeting_timeout_ms,
                                 const EmuQmpClientOps *ops, void *userdata)
{
        EmuQmpClient *c = g_new0(EmuQmpClient, 1);
        c->fd = fd;
        c->name = g_strdup(name);
        c->ops = ops;
        c->userdata = userdata;
        c->decoder = emu_qmp_decoder_new(QMP_CLIENT_MAX_MESSAGE);
        c->out = g_byte_array_new();
        c->next_id = 1;
        g_queue_init(&c->queue);
        g_queue_init(&c->failed);
        (void)emu_fd_nonblock(fd, true);
        c->in_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, c);
        if (greeting_timeout_ms)
                c->timer = g_timeout_add(greeting_timeout_ms, on_timeout, c);
        return c;
}

void emu_qmp_client_free(EmuQmpClient *c)
{
        if (!c)
                return;
        if (c->dispatching) {
                c->free_pending = true;
                return;
        }
        client_destroy(c);
}

static void client_destroy(EmuQmpClient *c)
{
        clear_source(&c->in_watch);
        clear_source(&c->out_watch);
        clear_source(&c->timer);
        clear_source(&c->fail_idle);
        g_queue_clear_full(&c->queue, (GDestroyNotify)pending_free);
        g_queue_clear_full(&c->failed, (GDestroyNotify)pending_free);
        emu_close(c->fd);
        emu_qmp_decoder_free(c->decoder);
        g_byte_array_unref(c->out);
        g_free(c->name);
        g_free(c);
}

void emu_qmp_client_execute(EmuQmpClient *c, const char *command, json_t *args,
                            guint timeout_ms, EmuQmpReplyFunc cb, void *userdata)
{
        if (muted(c)) {
                json_decref(args);
                return;
        }
        Pending *p = g_new0(Pending, 1);
        p->command = g_strdup(command);
        p->args = args;
        p->timeout_ms = timeout_ms;
        p->cb = cb;
        p->userdata = userdata;
        if (c->closed) {
                g_queue_push_tail(&c->failed, p);
                if (!c->fail_idle)
                        c->fail_idle = g_idle_add(on_fail_idle, c);
                return;
        }
        g_queue_push_tail(&c->queue, p);
        send_next(c);
}

bool emu_qmp_client_is_ready(const EmuQmpClient *c)
{
        return c->ready;
}

bool emu_qmp_client_is_closed(const EmuQmpClient *c)
{
        return c->closed;
}

int emu_qmp_connect_unix(const char *path, GError **error)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path)) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "QMP socket path %s is longer than %zu bytes", path,
                            sizeof(sa.sun_path) - 1);
                return -1;
        }
        strcpy(sa.sun_path, path);
        emu_autofd fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED, "socket: %s", g_strerror(errno));
                return -1;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                            "cannot connect to QMP socket %s: %s", path, g_strerror(errno));
                return -1;
        }
        return emu_steal_fd(&fd);
}
