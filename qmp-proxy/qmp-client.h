/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/*
 * An asynchronous QMP client on the GLib main loop, used for the VM's QEMU
 * and for each emulator's own monitor. It reads the greeting, negotiates
 * capabilities (with "oob" when the server offers it), then sends commands
 * in the order they were submitted, several in flight at once, and matches
 * each reply to its command by the integer id it put on it. QMP answers
 * in-band commands in order, and emud's own hotplug sequences chain their
 * commands (the next one is submitted from the previous one's callback), so
 * pipelining changes nothing for them.
 *
 * When the connection ends (hang-up, protocol error, the greeting timing
 * out) every queued command's callback gets an error, then ops->closed runs
 * once. After that, execute() fails from an idle callback, never
 * re-entrantly.
 */
typedef struct EmuQmpClient EmuQmpClient;

/* ret is borrowed and NULL on error; error is NULL on success. */
typedef void (*EmuQmpReplyFunc)(EmuQmpClient *c, json_t *ret, const GError *error,
                                void *userdata);

/*
 * For forwarded commands: reply is the whole reply object as the server sent
 * it ("return" or "error", with the client's upstream "id"), borrowed; on a
 * local failure (connection gone, timeout) reply is NULL and error is set.
 */
typedef void (*EmuQmpRawReplyFunc)(EmuQmpClient *c, json_t *reply, const GError *error,
                                   void *userdata);

typedef struct {
        /* greeting is the server's {"QMP": ...} object, borrowed. */
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

/*
 * args is stolen (may be NULL); timeout_ms 0 means none. cb may be NULL. A
 * command that times out gets an EMU_ERROR_TIMEOUT error and its late reply
 * is dropped.
 */
void emu_qmp_client_execute(EmuQmpClient *c, const char *command, json_t *args,
                            guint timeout_ms, EmuQmpReplyFunc cb, void *userdata);
/* The same, with fd (taken over; -1 for none) sent as SCM_RIGHTS, as getfd needs. */
void emu_qmp_client_execute_fd(EmuQmpClient *c, const char *command, json_t *args, int fd,
                               guint timeout_ms, EmuQmpReplyFunc cb, void *userdata);

/*
 * Send a whole command object ({"execute" or "exec-oob", "arguments"?});
 * its "id" is replaced with the client's own. msg is stolen; fds (n_fds of
 * them, may be 0) are taken over and sent as SCM_RIGHTS with the message's
 * first byte. Because QEMU keeps only the latest fds it received on a
 * connection, a command carrying fds is held back (and everything after it,
 * to keep the order) until no other fd-carrying command is in flight.
 * Returns a handle for emu_qmp_client_cancel(); never 0.
 */
guint64 emu_qmp_client_forward(EmuQmpClient *c, json_t *msg, int *fds, size_t n_fds,
                               EmuQmpRawReplyFunc cb, void *userdata);

/* The callback of the command with this handle will not run; unknown handles are ignored. */
void emu_qmp_client_cancel(EmuQmpClient *c, guint64 handle);

/* The server's greeting, borrowed; NULL until it arrived. */
json_t *emu_qmp_client_get_greeting(const EmuQmpClient *c);
/* True once capabilities were negotiated with "oob" enabled. */
bool emu_qmp_client_has_oob(const EmuQmpClient *c);

/*
 * Observers watch a client that someone else owns (the QMP proxy watches
 * the VM's client that the manager owns). closed runs before the owner's
 * ops->closed, and also when the client is freed while still open, so an
 * observer can always drop its pointer in time; nothing runs after it.
 */
typedef struct {
        void (*ready)(EmuQmpClient *c, json_t *greeting, void *userdata);
        /* msg is the whole event object, with "timestamp", borrowed. */
        void (*event)(EmuQmpClient *c, json_t *msg, void *userdata);
        void (*closed)(EmuQmpClient *c, const GError *reason, void *userdata);
} EmuQmpObserverOps;

/* Returns an id for emu_qmp_client_remove_observer(); never 0. */
guint emu_qmp_client_add_observer(EmuQmpClient *c, const EmuQmpObserverOps *ops,
                                  void *userdata);
void emu_qmp_client_remove_observer(EmuQmpClient *c, guint id);

bool emu_qmp_client_is_ready(const EmuQmpClient *c);
bool emu_qmp_client_is_closed(const EmuQmpClient *c);

/* Connect to a QMP unix socket. Returns the fd or -1 with error set. */
int emu_qmp_connect_unix(const char *path, GError **error);
