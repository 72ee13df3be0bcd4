/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fake-qmp: see fake-qmp.h. */
#include <string.h>
#include <sys/socket.h>

#include "fake-qmp.h"

json_t *server_read(Server *s)
{
        for (int spins = 0; spins < 5000; spins++) {
                char *nl = memchr(s->buf->str, '\n', s->buf->len);
                if (nl) {
                        json_t *msg = json_loadb(s->buf->str, (size_t)(nl - s->buf->str), 0,
                                                 NULL);
                        g_string_erase(s->buf, 0, nl - s->buf->str + 1);
                        g_assert_nonnull(msg);
                        return msg;
                }
                char data[4096];
                char control[CMSG_SPACE(sizeof(int) * 4)];
                struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                                     .msg_controllen = sizeof(control) };
                ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n > 0) {
                        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                        if (cm && cm->cmsg_type == SCM_RIGHTS) {
                                memcpy(s->fds + s->n_fds, CMSG_DATA(cm), sizeof(int));
                                s->n_fds++;
                        }
                        g_string_append_len(s->buf, data, n);
                        continue;
                }
                g_main_context_iteration(NULL, FALSE);
                g_usleep(200);
        }
        g_assert_not_reached();
}

bool server_quiet(Server *s)
{
        for (int i = 0; i < 20; i++)
                g_main_context_iteration(NULL, FALSE);
        char c;
        return !memchr(s->buf->str, '\n', s->buf->len) &&
               recv(s->fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0;
}

void server_write(Server *s, const char *text)
{
        g_assert_cmpint(send(s->fd, text, strlen(text), 0), ==, (ssize_t)strlen(text));
}

void spin_until(bool *flag)
{
        for (int i = 0; i < 5000 && !*flag; i++) {
                g_main_context_iteration(NULL, FALSE);
                g_usleep(200);
        }
        g_assert_true(*flag);
}

