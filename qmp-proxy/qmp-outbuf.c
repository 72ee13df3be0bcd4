/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qmp-outbuf: non-blocking output for QMP sockets, shared by the QMP client
 * (emud to QEMU, with fds for getfd/add-fd) and the proxy's sessions.
 *
 * fds are pinned to a stream offset. A write never spans two messages when
 * either carries fds, so the receiver sees each fd arrive with the start of
 * the message that names it, which is how QEMU's monitor associates them.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "emu-util.h"
#include "qmp-outbuf.h"

typedef struct {
        guint64 at; /* stream offset of the byte that carries them */
        size_t n;
        int fds[];
} OutFds;

struct EmuQmpOutbuf {
        GByteArray *data;
        guint64 base; /* stream offset of data->data[0] */
        GQueue fds;   /* OutFds, by offset */
};

static void close_fds(const int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                emu_close(fds[i]);
}

static void out_fds_free(OutFds *m)
{
        close_fds(m->fds, m->n);
        g_free(m);
}

EmuQmpOutbuf *emu_qmp_outbuf_new(void)
{
        EmuQmpOutbuf *b = g_new0(EmuQmpOutbuf, 1);
        b->data = g_byte_array_new();
        g_queue_init(&b->fds);
        return b;
}

void emu_qmp_outbuf_free(EmuQmpOutbuf *b)
{
        if (!b)
                return;
        g_queue_clear_full(&b->fds, (GDestroyNotify)out_fds_free);
        g_byte_array_unref(b->data);
        g_free(b);
}

void emu_qmp_outbuf_append(EmuQmpOutbuf *b, const void *data, size_t len, const int *fds,
                           size_t n_fds)
{
        if (n_fds > EMU_QMP_MAX_FDS) {
                close_fds(fds + EMU_QMP_MAX_FDS, n_fds - EMU_QMP_MAX_FDS);
                n_fds = EMU_QMP_MAX_FDS;
        }
        if (n_fds > 0 && len == 0) {
                close_fds(fds, n_fds); /* nothing to carry them */
                n_fds = 0;
        }
        if (n_fds > 0) {
                OutFds *m = g_malloc(sizeof(OutFds) + sizeof(int) * n_fds);
                m->at = b->base + b->data->len;
                m->n = n_fds;
                memcpy(m->fds, fds, sizeof(int) * n_fds);
                g_queue_push_tail(&b->fds, m);
        }
        g_byte_array_append(b->data, data, (guint)len);
}

static ssize_t send_chunk(int fd, const void *data, size_t len, const OutFds *m)
{
        struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        union {
                char buf[CMSG_SPACE(sizeof(int) * EMU_QMP_MAX_FDS)];
                struct cmsghdr align;
        } control;
        if (m) {
                memset(&control, 0, sizeof(control));
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->n);
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * m->n);
                memcpy(CMSG_DATA(cm), m->fds, sizeof(int) * m->n);
        }
        return sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int emu_qmp_outbuf_flush(EmuQmpOutbuf *b, int fd)
{
        while (b->data->len > 0) {
                OutFds *m = g_queue_peek_head(&b->fds);
                size_t len = b->data->len;
                bool with_fds = m && m->at == b->base;
                OutFds *limit = with_fds ? g_queue_peek_nth(&b->fds, 1) : m;
                if (limit && limit->at - b->base < len)
                        len = (size_t)(limit->at - b->base);
                ssize_t n = send_chunk(fd, b->data->data, len, with_fds ? m : NULL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EWOULDBLOCK)
                        return -EAGAIN;
                if (n < 0)
                        return -errno;
                if (with_fds) {
                        /* The peer has its own copies now. */
                        g_queue_pop_head(&b->fds);
                        out_fds_free(m);
                }
                g_byte_array_remove_range(b->data, 0, (guint)n);
                b->base += (guint64)n;
        }
        return 0;
}

size_t emu_qmp_outbuf_pending(const EmuQmpOutbuf *b)
{
        return b->data->len;
}
