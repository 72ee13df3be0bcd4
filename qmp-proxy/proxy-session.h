/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/*
 * One client connection of the QMP proxy: bytes and fds in, lines out, and
 * the caps on both. What the lines mean is the proxy's business (proxy.c).
 */
typedef struct ProxySession ProxySession;

typedef struct {
        /*
         * One line from the client: r == 1 and value (any JSON value,
         * borrowed), or r < 0 (-EBADMSG, -EMSGSIZE) and why.
         */
        void (*input)(ProxySession *s, int r, json_t *value, const char *why, void *userdata);
        /*
         * The session is over: the peer left, a write failed, or it let more
         * than its cap of output pile up. Runs from an idle callback, never
         * from inside a proxy_session_* call; the owner frees the session.
         */
        void (*closed)(ProxySession *s, const char *reason, void *userdata);
} ProxySessionOps;

/* Takes ownership of fd (an accepted stream socket). */
ProxySession *proxy_session_new(int fd, size_t max_message, size_t max_output,
                                const ProxySessionOps *ops, void *userdata);
void proxy_session_free(ProxySession *s);

/* Queue a message (encoded here) or pre-encoded text ("...\r\n", for event fan-out). */
void proxy_session_send(ProxySession *s, json_t *msg);
void proxy_session_send_text(ProxySession *s, const char *text, size_t len);

/*
 * The first fd of the latest batch the client sent (SCM_RIGHTS), or -1;
 * the rest of the batch is closed. This is how QEMU's monitor hands fds to
 * getfd and add-fd, and the proxy keeps the same semantics.
 */
int proxy_session_take_fd(ProxySession *s);

/* End the session: ops->closed follows from an idle callback. */
void proxy_session_close(ProxySession *s, const char *reason);
bool proxy_session_is_closed(const ProxySession *s);
