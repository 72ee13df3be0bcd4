/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stddef.h>

/*
 * The outgoing side of a QMP stream socket: bytes waiting to be written,
 * with fds that must travel (as SCM_RIGHTS) on the first byte of a given
 * message and on no other.
 */
typedef struct EmuQmpOutbuf EmuQmpOutbuf;

EmuQmpOutbuf *emu_qmp_outbuf_new(void);
/* Closes fds never sent. Accepts NULL. */
void emu_qmp_outbuf_free(EmuQmpOutbuf *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuQmpOutbuf, emu_qmp_outbuf_free)

/* Max fds on one message. */
#define EMU_QMP_MAX_FDS 16

/*
 * Queue len bytes. The n_fds fds (at most EMU_QMP_MAX_FDS; the rest are
 * closed) are taken over and closed here once sent.
 */
void emu_qmp_outbuf_append(EmuQmpOutbuf *b, const void *data, size_t len, const int *fds,
                           size_t n_fds);

/* Write what the socket takes: 0 when empty, -EAGAIN when bytes remain, or -errno. */
int emu_qmp_outbuf_flush(EmuQmpOutbuf *b, int fd);

size_t emu_qmp_outbuf_pending(const EmuQmpOutbuf *b);
