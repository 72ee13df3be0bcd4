/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qmp-client: one QMP connection, driven by the GLib main loop.
 *
 * Commands are queued in submission order and sent with an integer id as
 * soon as the connection is ready; several may be in flight. A reply is
 * matched to its command by id, so a reply to a command that already timed
 * out (or was cancelled) is dropped rather than handed to the wrong caller,
 * and out-of-band replies that overtake in-band ones find their callers.
 *
 * Two kinds of callers share the connection: emud's own sequences
 * (execute(): the "return" value or a GError) and the QMP proxy
 * (forward(): the whole reply object, plus SCM_RIGHTS fds on the way out).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <glib-unix.h>

#include "emu-error.h"
#include "emu-socket.h"
#include "emu-util.h"
#include "qmp-client.h"
#include "qmp-codec.h"
#include "qmp-outbuf.h"

/* QEMU's replies (query-qmp-schema is the largest) stay well below this. */
#define QMP_CLIENT_MAX_MESSAGE (64u * 1024 * 1024)

typedef struct Pending Pending;
struct Pending {
        EmuQmpClient *c;
        guint64 id;
        char *command;   /* for messages */
        json_t *msg;     /* the command object, without its id until sent */
        int *fds;
        size_t n_fds;
        bool fd_barrier; /* in flight with fds: later fd commands wait */
        guint timeout_ms;
        guint timer;
        EmuQmpReplyFunc cb;
        EmuQmpRawReplyFunc raw_cb;
        void *userdata;
};

typedef struct {
        guint id;
        const EmuQmpObserverOps *ops;
        void *userdata;
} Observer;

struct EmuQmpClient {
        int fd;
        char *name;
        const EmuQmpClientOps *ops;
        void *userdata;
        EmuQmpDecoder *decoder;
        EmuQmpOutbuf *out;
        guint in_watch;
        guint out_watch;
        guint timer;          /* greeting timeout */
        guint fail_idle;      /* delivers errors for execute() after close */
        GQueue waiting;       /* Pending not sent yet, in submission order */
        GQueue flight;        /* Pending sent, in sending order */
        unsigned fd_flight;   /* fd-carrying commands in flight */
        guint64 next_id;
        json_t *greeting;
        bool oob;
        bool negotiating;     /* qmp_capabilities sent, reply awaited */
        bool ready;
        bool closed;
        GQueue failed;        /* Pending to fail from fail_idle */
        GPtrArray *observers; /* Observer; NULL slots are removed ones */
        guint next_observer;
        bool observers_told;  /* observers have seen closed */
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

static void close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                emu_close(fds[i]);
}

static void pending_free(Pending *p)
{
        if (p->timer)
                g_source_remove(p->timer);
        close_fds(p->fds, p->n_fds);
        g_free(p->fds);
        g_free(p->command);
        json_decref(p->msg);
        g_free(p);
}

static void pending_fail(Pending *p, const GError *err)
{
        EmuQmpClient *c = p->c;
        if (muted(c))
                return;
        if (p->raw_cb)
                p->raw_cb(c, NULL, err, p->userdata);
        else if (p->cb)
                p->cb(c, NULL, err, p->userdata);
}

static void client_close(EmuQmpClient *c, GError *reason);
static void send_pending(EmuQmpClient *c);

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
        int r = emu_qmp_outbuf_flush(c->out, c->fd);
        if (r == -EAGAIN) {
                if (!c->out_watch)
                        c->out_watch = emu_fd_watch(c->fd, G_IO_OUT, on_writable, c);
                return;
        }
        clear_source(&c->out_watch);
        if (r < 0)
                client_close(c, g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                            "%s: write failed: %s", c->name, g_strerror(-r)));
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

/* Takes the fds; they are closed once sent (the peer has its own copies). */
static void queue_message(EmuQmpClient *c, json_t *msg, int *fds, size_t n_fds)
{
        size_t len = 0;
        g_autofree char *text = emu_qmp_encode(msg, &len);
        emu_qmp_outbuf_append(c->out, text, len, fds, n_fds);
        flush_out(c);
}

static gboolean on_greeting_timeout(gpointer userdata)
{
        EmuQmpClient *c = userdata;
        c->timer = 0;
        enter(c);
        client_close(c, g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                    "%s: no QMP greeting (is another client "
                                    "connected to this monitor?)",
                                    c->name));
        leave(c);
        return G_SOURCE_REMOVE;
}

static void finish_flight(EmuQmpClient *c, Pending *p)
{
        g_queue_remove(&c->flight, p);
        clear_source(&p->timer);
        if (p->fd_barrier) {
                p->fd_barrier = false;
                c->fd_flight--;
        }
}

static gboolean on_command_timeout(gpointer userdata)
{
        Pending *p = userdata;
        EmuQmpClient *c = p->c;
        p->timer = 0;
        enter(c);
        /* The reply may still come; its id will no longer match and it is dropped. */
        finish_flight(c, p);
        g_autoptr(GError) err = g_error_new(EMU_ERROR, EMU_ERROR_TIMEOUT,
                                            "%s: no reply to %s within %u ms", c->name,
                                            p->command, p->timeout_ms);
        pending_fail(p, err);
        pending_free(p);
        send_pending(c);
        leave(c);
        return G_SOURCE_REMOVE;
}

static void send_pending(EmuQmpClient *c)
{
        Pending *p;
        while (c->ready && !c->closed && (p = g_queue_peek_head(&c->waiting))) {
                if (p->n_fds > 0 && c->fd_flight > 0)
                        return; /* would replace the fds QEMU has not consumed yet */
                g_queue_pop_head(&c->waiting);
                json_object_set_new(p->msg, "id", json_integer((json_int_t)p->id));
                if (p->n_fds > 0) {
                        p->fd_barrier = true;
                        c->fd_flight++;
                }
                if (p->timeout_ms)
                        p->timer = g_timeout_add(p->timeout_ms, on_command_timeout, p);
                g_queue_push_tail(&c->flight, p);
                int *fds = g_steal_pointer(&p->fds);
                size_t n_fds = p->n_fds;
                p->n_fds = 0;
                queue_message(c, p->msg, fds, n_fds);
                g_free(fds);
        }
}

static Pending *find_pending(GQueue *q, guint64 id)
{
        for (GList *l = q->head; l; l = l->next) {
                Pending *p = l->data;
                if (p->id == id)
                        return p;
        }
        return NULL;
}

static void handle_reply(EmuQmpClient *c, json_t *msg)
{
        json_t *id = json_object_get(msg, "id");
        if (!json_is_integer(id) || json_integer_value(id) <= 0)
                return;
        Pending *p = find_pending(&c->flight, (guint64)json_integer_value(id));
        if (!p)
                return; /* a reply to a command that timed out */
        finish_flight(c, p);

        json_t *error = json_object_get(msg, "error");
        if (muted(c)) {
                /* the owner is freeing us: no more callbacks */
        } else if (p->raw_cb) {
                p->raw_cb(c, msg, NULL, p->userdata);
        } else if (error) {
                const char *cls = json_string_value(json_object_get(error, "class"));
                const char *desc = json_string_value(json_object_get(error, "desc"));
                g_autoptr(GError) err = g_error_new(EMU_QMP_ERROR,
                                                    emu_qmp_error_class_from_name(cls), "%s",
                                                    desc ? desc : "unknown QMP error");
                if (p->cb)
                        p->cb(c, NULL, err, p->userdata);
        } else if (p->cb) {
                p->cb(c, json_object_get(msg, "return"), NULL, p->userdata);
        }
        pending_free(p);
        send_pending(c);
}

static bool offers_oob(json_t *greeting)
{
        json_t *caps = json_object_get(json_object_get(greeting, "QMP"), "capabilities");
        size_t i;
        json_t *cap;
        json_array_foreach(caps, i, cap)
                if (g_strcmp0(json_string_value(cap), "oob") == 0)
                        return true;
        return false;
}

static void notify_ready(EmuQmpClient *c)
{
        if (c->ops->ready && !muted(c))
                c->ops->ready(c, c->greeting, c->userdata);
        for (guint i = 0; i < c->observers->len && !muted(c); i++) {
                Observer *o = g_ptr_array_index(c->observers, i);
                if (o && o->ops->ready)
                        o->ops->ready(c, c->greeting, o->userdata);
        }
}

static void notify_event(EmuQmpClient *c, const char *name, json_t *msg)
{
        if (c->ops->event && !muted(c))
                c->ops->event(c, name, json_object_get(msg, "data"), c->userdata);
        for (guint i = 0; i < c->observers->len && !muted(c); i++) {
                Observer *o = g_ptr_array_index(c->observers, i);
                if (o && o->ops->event)
                        o->ops->event(c, msg, o->userdata);
        }
}

static void notify_observers_closed(EmuQmpClient *c, const GError *reason)
{
        if (c->observers_told)
                return;
        c->observers_told = true;
        for (guint i = 0; i < c->observers->len; i++) {
                Observer *o = g_ptr_array_index(c->observers, i);
                if (o && o->ops->closed)
                        o->ops->closed(c, reason, o->userdata);
        }
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
                c->greeting = json_incref(msg);
                c->negotiating = true;
                /* With oob on, the proxy can pass clients' exec-oob through. */
                c->oob = offers_oob(msg);
                g_autoptr(json_t) caps = c->oob ? json_pack("{s:s, s:{s:[s]}}", "execute",
                                                            "qmp_capabilities", "arguments",
                                                            "enable", "oob")
                                                : json_pack("{s:s}", "execute",
                                                            "qmp_capabilities");
                queue_message(c, caps, NULL, 0);
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
                notify_ready(c);
                send_pending(c);
                return;
        }
        const char *event = json_string_value(json_object_get(msg, "event"));
        if (event) {
                notify_event(c, event, msg);
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
        char buf[65536];
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
                pending_fail(p, err);
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

        /* Observers first: the owner's closed callback may free the client. */
        if (!muted(c))
                notify_observers_closed(c, err);
        Pending *p;
        while ((p = g_queue_pop_head(&c->flight)) || (p = g_queue_pop_head(&c->waiting))) {
                if (p->fd_barrier)
                        c->fd_flight--;
                p->fd_barrier = false;
                pending_fail(p, err);
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
        c->out = emu_qmp_outbuf_new();
        c->next_id = 1;
        c->observers = g_ptr_array_new_with_free_func(g_free);
        g_queue_init(&c->waiting);
        g_queue_init(&c->flight);
        g_queue_init(&c->failed);
        (void)emu_fd_nonblock(fd, true);
        c->in_watch = emu_fd_watch(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, c);
        if (greeting_timeout_ms)
                c->timer = g_timeout_add(greeting_timeout_ms, on_greeting_timeout, c);
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
        if (!c->observers_told) {
                g_autoptr(GError) err = g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                                    "%s: connection closed by emud", c->name);
                notify_observers_closed(c, err);
        }
        clear_source(&c->in_watch);
        clear_source(&c->out_watch);
        clear_source(&c->timer);
        clear_source(&c->fail_idle);
        g_queue_clear_full(&c->waiting, (GDestroyNotify)pending_free);
        g_queue_clear_full(&c->flight, (GDestroyNotify)pending_free);
        g_queue_clear_full(&c->failed, (GDestroyNotify)pending_free);
        emu_close(c->fd);
        emu_qmp_decoder_free(c->decoder);
        emu_qmp_outbuf_free(c->out);
        g_ptr_array_unref(c->observers);
        json_decref(c->greeting);
        g_free(c->name);
        g_free(c);
}

static guint64 submit(EmuQmpClient *c, Pending *p)
{
        p->c = c;
        p->id = c->next_id++;
        if (c->closed) {
                g_queue_push_tail(&c->failed, p);
                if (!c->fail_idle)
                        c->fail_idle = g_idle_add(on_fail_idle, c);
                return p->id;
        }
        g_queue_push_tail(&c->waiting, p);
        send_pending(c);
        return p->id;
}

void emu_qmp_client_execute(EmuQmpClient *c, const char *command, json_t *args,
                            guint timeout_ms, EmuQmpReplyFunc cb, void *userdata)
{
        emu_qmp_client_execute_fd(c, command, args, -1, timeout_ms, cb, userdata);
}

void emu_qmp_client_execute_fd(EmuQmpClient *c, const char *command, json_t *args, int fd,
                               guint timeout_ms, EmuQmpReplyFunc cb, void *userdata)
{
        if (muted(c)) {
                json_decref(args);
                close_fds(&fd, fd >= 0);
                return;
        }
        Pending *p = g_new0(Pending, 1);
        if (fd >= 0) {
                p->fds = g_memdup2(&fd, sizeof(int));
                p->n_fds = 1;
        }
        p->command = g_strdup(command);
        p->msg = json_pack("{s:s}", "execute", command);
        if (args)
                json_object_set_new(p->msg, "arguments", args);
        p->timeout_ms = timeout_ms;
        p->cb = cb;
        p->userdata = userdata;
        submit(c, p);
}

guint64 emu_qmp_client_forward(EmuQmpClient *c, json_t *msg, int *fds, size_t n_fds,
                               EmuQmpRawReplyFunc cb, void *userdata)
{
        Pending *p = g_new0(Pending, 1);
        const char *name = json_string_value(json_object_get(msg, "execute"));
        if (!name)
                name = json_string_value(json_object_get(msg, "exec-oob"));
        p->command = g_strdup(name ? name : "(forwarded command)");
        p->msg = msg;
        if (n_fds > EMU_QMP_MAX_FDS) {
                close_fds(fds + EMU_QMP_MAX_FDS, n_fds - EMU_QMP_MAX_FDS);
                n_fds = EMU_QMP_MAX_FDS;
        }
        if (n_fds > 0)
                p->fds = g_memdup2(fds, sizeof(int) * n_fds);
        p->n_fds = n_fds;
        p->raw_cb = cb;
        p->userdata = userdata;
        if (muted(c)) {
                guint64 id = c->next_id++;
                pending_free(p);
                return id;
        }
        return submit(c, p);
}

void emu_qmp_client_cancel(EmuQmpClient *c, guint64 handle)
{
        Pending *p = find_pending(&c->waiting, handle);
        if (p) {
                g_queue_remove(&c->waiting, p);
                pending_free(p);
                return;
        }
        p = find_pending(&c->flight, handle);
        if (!p)
                p = find_pending(&c->failed, handle);
        if (p) {
                /* Stays in flight so that its reply is recognised and dropped. */
                p->cb = NULL;
                p->raw_cb = NULL;
        }
}

json_t *emu_qmp_client_get_greeting(const EmuQmpClient *c)
{
        return c->greeting;
}

bool emu_qmp_client_has_oob(const EmuQmpClient *c)
{
        return c->ready && c->oob;
}

guint emu_qmp_client_add_observer(EmuQmpClient *c, const EmuQmpObserverOps *ops,
                                  void *userdata)
{
        Observer *o = g_new0(Observer, 1);
        o->id = ++c->next_observer;
        o->ops = ops;
        o->userdata = userdata;
        g_ptr_array_add(c->observers, o);
        return o->id;
}

void emu_qmp_client_remove_observer(EmuQmpClient *c, guint id)
{
        for (guint i = 0; i < c->observers->len; i++) {
                Observer *o = g_ptr_array_index(c->observers, i);
                if (o && o->id == id) {
                        /* A NULL slot, not a removal: notify loops may be walking the array. */
                        g_free(o);
                        g_ptr_array_index(c->observers, i) = NULL;
                        return;
                }
        }
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
        int fd = emu_unix_connect(path);
        if (fd == -ENAMETOOLONG)
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "QMP socket path %s is longer than %zu bytes", path,
                            sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
        else if (fd < 0)
                g_set_error(error, EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                            "cannot connect to QMP socket %s: %s", path, g_strerror(-fd));
        return fd < 0 ? -1 : fd;
}
