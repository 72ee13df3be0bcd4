/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#include "qmp-client.h"
#include "qmp-codec.h"

/*
 * The QMP proxy: one listening socket per VM that speaks QMP exactly as
 * QEMU does and lets many clients in at once. Their commands go to QEMU over
 * the VM's EmuQmpClient (pipelined, with the proxy's own ids upstream; see
 * emu_qmp_proxy_add_upstream() for more monitors)
 * or to extension commands that the owner registers; QEMU's events reach
 * every negotiated client, and the owner can add events of its own.
 */
typedef struct EmuQmpProxy EmuQmpProxy;
typedef struct EmuQmpProxyRequest EmuQmpProxyRequest;

typedef struct {
        mode_t mode;           /* of the socket file; default 0600 */
        uid_t owner;           /* (uid_t)-1: leave as created */
        gid_t group;           /* (gid_t)-1: leave as created */
        size_t max_message;    /* bytes per client line; default 1 MiB */
        guint max_in_flight;   /* commands per client awaiting a reply; default 32 */
        size_t max_output;     /* bytes queued for a client before it is dropped; 8 MiB */
        guint max_clients;     /* default 64 */
        guint max_fdnames;     /* getfd names per client; default 64 */
} EmuQmpProxyConfig;

/* The defaults above. */
void emu_qmp_proxy_config_init(EmuQmpProxyConfig *cfg);

/*
 * Create socket_path (replacing a stale socket there) with cfg's mode and
 * owner, and listen. upstream is borrowed: the proxy watches it (observer)
 * and notices when it closes or is freed; it need not be ready yet, in
 * which case clients get their greeting once it is. cfg NULL: defaults.
 */
EmuQmpProxy *emu_qmp_proxy_new(EmuQmpClient *upstream, const char *socket_path,
                               const EmuQmpProxyConfig *cfg, GError **error);
/* Disconnects every client and removes the socket file. Accepts NULL. */
void emu_qmp_proxy_free(EmuQmpProxy *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuQmpProxy, emu_qmp_proxy_free)

/*
 * The handler owns req and must complete it exactly once with
 * emu_qmp_proxy_request_return() or _error(), now or later; completing
 * after the client left (or the proxy was freed) just frees req. arguments
 * is borrowed (an object, never NULL). Do not free the proxy from inside a
 * handler.
 */
typedef void (*EmuQmpProxyCommandFunc)(EmuQmpProxy *p, json_t *arguments,
                                       EmuQmpProxyRequest *req, void *userdata);

/*
 * Register an extension command. Its name must carry a downstream prefix
 * ("__org.emud_..."), as the QMP spec asks of vendor extensions; it is then
 * listed by query-commands. Fails for other names and duplicates.
 */
bool emu_qmp_proxy_add_command(EmuQmpProxy *p, const char *name, EmuQmpProxyCommandFunc fn,
                               void *userdata, GError **error);

/* ret is stolen; NULL means {}. */
void emu_qmp_proxy_request_return(EmuQmpProxyRequest *req, json_t *ret);
void emu_qmp_proxy_request_error(EmuQmpProxyRequest *req, EmuQmpErrorClass cls,
                                 const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/*
 * Send {"timestamp": ..., "event": name, "data": data} to every negotiated
 * client, in order with QEMU's events. data is stolen and may be NULL.
 */
void emu_qmp_proxy_emit_event(EmuQmpProxy *p, const char *name, json_t *data);

guint emu_qmp_proxy_n_clients(const EmuQmpProxy *p);

/*
 * Another monitor of the same QEMU, borrowed like the primary upstream,
 * for clients' commands only: QEMU runs one command at a time per monitor,
 * so clients spread over several monitors run theirs side by side. Each new
 * client is pinned to the ready monitor with the fewest clients and gets
 * that monitor's events; emud's own commands stay on the primary.
 */
void emu_qmp_proxy_add_upstream(EmuQmpProxy *p, EmuQmpClient *upstream);
