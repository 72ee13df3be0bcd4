/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <jansson.h>

/*
 * An asynchronous QMP client on the GLib main loop, used for the VM's QEMU
 * and for each emulator's own monitor. It reads the greeting, negotiates
 * capabilities, then runs commands one at a time (QMP answers in order, and
 * emud's hotplug sequences depend on that order) and hands events over.
 *
 * When the connection ends (hang-up, protocol error, a command or the
 * greeting timing out) every queued command's callback gets an error, then
 * ops->closed runs once. After that, execute() fails from an idle callback,
 * never re-entrantly.
 */
typedef struct EmuQmpClient EmuQmpClient;

/* ret is borrowed and NULL on error; error is NULL on success. */
typedef void (*EmuQmpReplyFunc)(EmuQmpClient *c, json_t *ret, const GError *error,
                                void *userdata);

typedef struct {
        void (*ready)(EmuQmpClient *c, json_t *greeting, void *userdata);
        void (*event)(EmuQmpClient *c, const char *name, json_t *data, void *userdata);
        void (*closed)(EmuQmpClient *c, const GError *reason, void *userdata);
} EmuQmpClientOps;

/* Takes ownership of fd (a connected stream socket). name is used in messages. */
EmuQmpClient *emu_qmp_client_new(int fd, const char *name, guint greeting_timeout_ms,
                                 const EmuQmpClientOps *ops, void *userdata);
/*
 * Drops queued commands without calling their callbacks. Accepts NULL. Safe
 * from inside the client's own callbacks: then the free happens when the
 * callback returns, and no further callback runs.
 */
void emu_qmp_client_free(EmuQmpClient *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuQmpClient, emu_qmp_client_free)

/* args is stolen (may be NULL); timeout_ms 0 means none. cb may be NULL. */
void emu_qmp_client_execute(EmuQmpClient *c, const char *command, json_t *args,
                            guint timeout_ms, EmuQmpReplyFunc cb, void *userdata);

bool emu_qmp_client_is_ready(const EmuQmpClient *c);
bool emu_qmp_client_is_closed(const EmuQmpClient *c);

/* Connect to a QMP unix socket. Returns the fd or -1 with error set. */
int emu_qmp_connect_unix(const char *path, GError **error);
