/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxy-session: the socket side of one QMP proxy client.
 *
 * Input is read in chunks, with any SCM_RIGHTS fds, and split into lines by
 * the QMP codec, capped at max_message per line. Output is never written
 * blocking: it queues, and a client that lets more than max_output bytes pile
 * up (one that stopped reading while events flow) is disconnected, so that a
 * stuck client costs the others nothing. Ending a session is always deferred
 * to an idle callback, so the owner may end one from inside any callback.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <glib-unix.h>

#include "emu-util.h"
#include "proxy-session.h"
#include "qmp-codec.h"
#include "qmp-outbuf.h"

#define READ_CHUNK 65536

struct ProxySession {
        int fd;
        const ProxySessionOps *ops;
        void *userdata;
        EmuQmpDecoder *decoder;
        EmuQmpOutbuf *out;
        size_t max_output;
        int fds[EMU_QMP_MAX_FDS]; /* the latest batch received */
        size_t n_fds;
        guint in_watch;
        guint out_watch;
        guint close_idle;
        char *close_reason;
        bool closed;
};

static void clear_source(guint *id)
{
        if (*id) {
                g_source_remove(*id);
                *id = 0;
        }
}

static void drop_fds(ProxySession *s)
{
        for (size_t i = 0; i < s->n_fds; i++)
                emu_close(s->fds[i]);
        s->n_fds = 0;
}

static gboolean on_close_idle(gpointer userdata)
{
        ProxySession *s = userdata;
        s->close_idle = 0;
        s->ops->closed(s, s->close_reason, s->userdata);
        return G_SOURCE_REMOVE;
}

void proxy_session_close(ProxySession *s, const char *reason)
{
        if (s->closed)
                return;
        s->closed = true;
        s->close_reason = g_strdup(reason);
        clear_source(&s->in_watch);
        clear_source(&s->out_watch);
        s->close_idle = g_idle_add(on_close_idle, s);
}

bool proxy_session_is_closed(const ProxySession *s)
{
        return s->closed;
}

static void take_fds(ProxySession *s, struct msghdr *mh)
{
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                const int *fds = (const int *)CMSG_DATA(cm);
                /* A new batch replaces an unclaimed one, as in QEMU's socket chardev. */
                drop_fds(s);
                for (size_t i = 0; i < n; i++) {
                        int fd;
                        memcpy(&fd, fds + i, sizeof(fd));
                        if (s->n_fds < EMU_QMP_MAX_FDS)
                                s->fds[s->n_fds++] = fd;
                        else
                                emu_close(fd);
                }
        }
}

static gboolean on_readable(int fd, GIOCondition cond, gpointer userdata)
{
        ProxySession *s = userdata;
        g_autofree char *buf = g_malloc(READ_CHUNK);
        union {
                char buf[CMSG_SPACE(sizeof(int) * EMU_QMP_MAX_FDS)];
                struct cmsghdr align;
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = READ_CHUNK };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1,
                .msg_control = control.buf, .msg_controllen = sizeof(control.buf),
        };
        ssize_t n = recvmsg(s->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return G_SOURCE_CONTINUE;
        if (n <= 0) {
                s->in_watch = 0;
                proxy_session_close(s, n < 0 ? g_strerror(errno) : "client disconnected");
                return G_SOURCE_REMOVE;
        }
        take_fds(s, &mh);
        emu_qmp_decoder_feed(s->decoder, buf, (size_t)n);
        while (!s->closed) {
                json_t *value = NULL;
                g_autofree char *why = NULL;
                int r = emu_qmp_decoder_next_value(s->decoder, &value, &why);
                if (r == 0)
                        break;
                s->ops->input(s, r, value, why, s->userdata);
                json_decref(value);
        }
        if (s->closed) {
                s->in_watch = 0;
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

static gboolean on_writable(int fd, GIOCondition cond, gpointer userdata);

static void flush(ProxySession *s)
{
        int r = emu_qmp_outbuf_flush(s->out, s->fd);
        if (r == -EAGAIN) {
                if (emu_qmp_outbuf_pending(s->out) > s->max_output) {
                        proxy_session_close(s, "client does not read its replies and events");
                        return;
                }
                if (!s->out_watch)
                        s->out_watch = emu_fd_watch(s->fd, G_IO_OUT, on_writable, s);
                return;
        }
        clear_source(&s->out_watch);
        if (r < 0)
                proxy_session_close(s, g_strerror(-r));
}

static gboolean on_writable(int fd, GIOCondition cond, gpointer userdata)
{
        ProxySession *s = userdata;
        s->out_watch = 0;
        flush(s);
        return G_SOURCE_REMOVE;
}

void proxy_session_send_text(ProxySession *s, const char *text, size_t len)
{
        if (s->closed)
                return;
        emu_qmp_outbuf_append(s->out, text, len, NULL, 0);
        /* While a write watch is pending the socket is full: no point trying now. */
        if (s->out_watch) {
                if (emu_qmp_outbuf_pending(s->out) > s->max_output)
                        proxy_session_close(s, "client does not read its replies and events");
                return;
        }
        flush(s);
}

void proxy_session_send(ProxySession *s, json_t *msg)
{
        size_t len = 0;
        g_autofree char *text = emu_qmp_encode(msg, &len);
        if (text)
                proxy_session_send_text(s, text, len);
}

int proxy_session_take_fd(ProxySession *s)
{
        if (s->n_fds == 0)
                return -1;
        int fd = s->fds[0];
        s->fds[0] = -1;
        for (size_t i = 1; i < s->n_fds; i++)
                emu_close(s->fds[i]);
        s->n_fds = 0;
        return fd;
}

ProxySession *proxy_session_new(int fd, size_t max_message, size_t max_output,
                                const ProxySessionOps *ops, void *userdata)
{
        ProxySession *s = g_new0(ProxySession, 1);
        s->fd = fd;
        s->ops = ops;
        s->userdata = userdata;
        s->decoder = emu_qmp_decoder_new(max_message);
        s->out = emu_qmp_outbuf_new();
        s->max_output = max_output;
        (void)emu_fd_nonblock(fd, true);
        s->in_watch = emu_fd_watch(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, s);
        return s;
}

void proxy_session_free(ProxySession *s)
{
        if (!s)
                return;
        clear_source(&s->in_watch);
        clear_source(&s->out_watch);
        clear_source(&s->close_idle);
        drop_fds(s);
        emu_close(s->fd);
        emu_qmp_decoder_free(s->decoder);
        emu_qmp_outbuf_free(s->out);
        g_free(s->close_reason);
        g_free(s);
}
