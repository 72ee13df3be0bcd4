/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <jansson.h>
#include <stddef.h>

/*
 * QMP framing as QEMU reads it: a message is one JSON value, wherever the
 * lines break (QEMU itself writes one per line, "...\r\n"; a client may send
 * several on a line, or one over several lines). Each is parsed with jansson.
 * A value longer than the cap is dropped as it arrives and reported once, so
 * a peer cannot make emud buffer without bound.
 */
typedef struct EmuQmpDecoder EmuQmpDecoder;

EmuQmpDecoder *emu_qmp_decoder_new(size_t max_message);
void emu_qmp_decoder_free(EmuQmpDecoder *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuQmpDecoder, emu_qmp_decoder_free)

void emu_qmp_decoder_feed(EmuQmpDecoder *d, const void *buf, size_t len);

/*
 * Take the next message. Returns 1 and sets *ret_msg (owned by the caller), 0
 * when no complete message is buffered, -EMSGSIZE for an over-long message or
 * -EBADMSG for a value that is not a JSON object; on errors *ret_error (if not
 * NULL) explains, and the bad input has been consumed so the caller can go on.
 */
int emu_qmp_decoder_next(EmuQmpDecoder *d, json_t **ret_msg, char **ret_error);

/*
 * Like emu_qmp_decoder_next(), but any JSON value is a message: the QMP
 * proxy answers a non-object value with QEMU's own error rather than
 * treating it as malformed.
 */
int emu_qmp_decoder_next_value(EmuQmpDecoder *d, json_t **ret_value, char **ret_error);

/* Bytes currently buffered; for tests and caps. */
size_t emu_qmp_decoder_pending(const EmuQmpDecoder *d);

/* Compact JSON followed by "\r\n", as QEMU frames it. g_free() the result. */
char *emu_qmp_encode(const json_t *msg, size_t *ret_len);

/* QMP error classes, as the QMP spec names them. */
#define EMU_QMP_ERROR (emu_qmp_error_quark())
GQuark emu_qmp_error_quark(void);
typedef enum {
        EMU_QMP_ERROR_GENERIC,
        EMU_QMP_ERROR_COMMAND_NOT_FOUND,
        EMU_QMP_ERROR_DEVICE_NOT_ACTIVE,
        EMU_QMP_ERROR_DEVICE_NOT_FOUND,
        EMU_QMP_ERROR_KVM_MISSING_CAP,
} EmuQmpErrorClass;

EmuQmpErrorClass emu_qmp_error_class_from_name(const char *name);
const char *emu_qmp_error_class_name(EmuQmpErrorClass cls);
