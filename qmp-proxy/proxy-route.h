/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <jansson.h>

/*
 * The QMP proxy's decisions about one client message, with no I/O: QMP's
 * input rules and negotiation mode as QEMU applies them, where a command
 * goes (answered here, forwarded to QEMU, or an extension command), and the
 * per-client fd-name rewriting. Kept pure so that unit tests and the fuzzer
 * drive it directly.
 */

/* Upstream names of a client's getfd fds are "emud-proxy.<client>.<name>". */
#define PROXY_FDNAME_PREFIX "emud-proxy."

typedef struct {
        bool negotiated;        /* qmp_capabilities accepted: command mode */
        bool oob;               /* the client enabled oob */
        bool oob_offered;       /* QEMU's greeting offers oob, and it is on upstream */
        const char *fd_prefix;  /* this client's "emud-proxy.<n>." */
        GHashTable *extensions; /* names of the extension commands (keys) */
} ProxyRouteCtx;

typedef enum {
        PROXY_ROUTE_REPLY,     /* send ->reply to the client */
        PROXY_ROUTE_UPSTREAM,  /* forward ->upstream to QEMU */
        PROXY_ROUTE_EXTENSION, /* run extension ->command with ->arguments */
} ProxyRouteAction;

typedef struct {
        ProxyRouteAction action;
        json_t *id;             /* the client's id as sent, any JSON value; NULL if none */
        json_t *reply;          /* REPLY: the whole reply, id included */
        bool negotiated;        /* REPLY: qmp_capabilities accepted, enter command mode */
        bool enable_oob;        /* ... with oob */
        json_t *upstream;       /* UPSTREAM: the command, without "id" */
        bool wants_fd;          /* UPSTREAM: getfd/add-fd, takes the client's latest fd */
        bool rewrote;           /* UPSTREAM: fd names rewritten; un-rewrite error texts */
        bool list_extensions;   /* UPSTREAM: query-commands, add the extensions to it */
        char *getfd_name;       /* UPSTREAM: getfd's name as the client gave it */
        char *closefd_name;     /* UPSTREAM: closefd's name as the client gave it */
        char *command;          /* the command's name, when there is one */
        json_t *arguments;      /* EXTENSION: the arguments, never NULL */
} ProxyRoute;

/* Decide about msg (any JSON value, borrowed). Fills *ret; clear it with proxy_route_clear(). */
void proxy_route(const ProxyRouteCtx *ctx, json_t *msg, ProxyRoute *ret);
void proxy_route_clear(ProxyRoute *r);

/* {"id": id, "error": {"class": cls, "desc": desc}}, id omitted when NULL; as QEMU orders it. */
json_t *proxy_error_reply(json_t *id, const char *cls, const char *desc);

/*
 * Turn QEMU's reply to a forwarded command into the client's: its own id
 * back (or none), and with fd_prefix (if not NULL) cut out of an error's
 * text so the client sees its own fd names. reply is modified in place.
 */
void proxy_reply_restore(json_t *reply, json_t *id, const char *fd_prefix);

/* The reply for a line the decoder rejected (r is -EBADMSG or -EMSGSIZE). */
json_t *proxy_bad_input_reply(int r, const char *why);
