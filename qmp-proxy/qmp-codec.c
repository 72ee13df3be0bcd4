/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qmp-codec: framing of QMP messages, and the QMP error classes.
 *
 * This is the only place that turns QMP bytes into JSON values, so both the
 * client side (emud talking to QEMU and emulators) and the fuzzers use it.
 */
#include <errno.h>
#include <string.h>

#include "qmp-codec.h"

struct EmuQmpDecoder {
        GByteArray *buf;
        size_t max_message;
        bool discarding; /* inside an over-long line: drop bytes up to its newline */
        bool report_oversize;
};

EmuQmpDecoder *emu_qmp_decoder_new(size_t max_message)
{
        EmuQmpDecoder *d = g_new0(EmuQmpDecoder, 1);
        d->buf = g_byte_array_new();
        d->max_message = max_message;
        return d;
}

void emu_qmp_decoder_free(EmuQmpDecoder *d)
{
        if (!d)
                return;
        g_byte_array_unref(d->buf);
        g_free(d);
}

void emu_qmp_decoder_feed(EmuQmpDecoder *d, const void *buf, size_t len)
{
        if (d->discarding) {
                const char *nl = memchr(buf, '\n', len);
                if (!nl)
                        return;
                d->discarding = false;
                size_t skip = (size_t)(nl - (const char *)buf) + 1;
                buf = (const char *)buf + skip;
                len -= skip;
        }
        g_byte_array_append(d->buf, buf, len);
}

size_t emu_qmp_decoder_pending(const EmuQmpDecoder *d)
{
        return d->buf->len;
}

static bool is_blank(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!g_ascii_isspace(s[i]))
                        return false;
        return true;
}

int emu_qmp_decoder_next_value(EmuQmpDecoder *d, json_t **ret_value, char **ret_error)
{
        for (;;) {
                if (d->report_oversize) {
                        d->report_oversize = false;
                        if (ret_error)
                                *ret_error = g_strdup_printf(
                                        "message larger than %zu bytes", d->max_message);
                        return -EMSGSIZE;
                }

                const char *data = (const char *)d->buf->data;
                const char *nl = memchr(data, '\n', d->buf->len);
                if (!nl) {
                        if (d->buf->len <= d->max_message)
                                return 0;
                        /* No end in sight: drop what we have and the rest of the line. */
                        g_byte_array_set_size(d->buf, 0);
                        d->discarding = true;
                        d->report_oversize = true;
                        continue;
                }

                size_t line_len = (size_t)(nl - data);
                if (line_len > d->max_message) {
                        g_byte_array_remove_range(d->buf, 0, line_len + 1);
                        d->report_oversize = true;
                        continue;
                }
                if (is_blank(data, line_len)) {
                        g_byte_array_remove_range(d->buf, 0, line_len + 1);
                        continue;
                }

                json_error_t jerr;
                json_t *value = json_loadb(data, line_len, JSON_DECODE_ANY, &jerr);
                g_byte_array_remove_range(d->buf, 0, line_len + 1);
                if (!value) {
                        if (ret_error)
                                *ret_error = g_strdup_printf("malformed JSON: %s", jerr.text);
                        return -EBADMSG;
                }
                *ret_value = value;
                return 1;
        }
}

int emu_qmp_decoder_next(EmuQmpDecoder *d, json_t **ret_msg, char **ret_error)
{
        json_t *msg = NULL;
        int r = emu_qmp_decoder_next_value(d, &msg, ret_error);
        if (r <= 0)
                return r;
        if (!json_is_object(msg)) {
                if (ret_error)
                        *ret_error = g_strdup("message is not a JSON object");
                json_decref(msg);
                return -EBADMSG;
        }
        *ret_msg = msg;
        return 1;
}

char *emu_qmp_encode(const json_t *msg, size_t *ret_len)
{
        char *text = json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
                return NULL;
        char *framed = g_strconcat(text, "\r\n", NULL);
        free(text);
        if (ret_len)
                *ret_len = strlen(framed);
        return framed;
}

G_DEFINE_QUARK(emu-qmp-error-quark, emu_qmp_error)

static const char *const class_names[] = {
        [EMU_QMP_ERROR_GENERIC] = "GenericError",
        [EMU_QMP_ERROR_COMMAND_NOT_FOUND] = "CommandNotFound",
        [EMU_QMP_ERROR_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
        [EMU_QMP_ERROR_DEVICE_NOT_FOUND] = "DeviceNotFound",
        [EMU_QMP_ERROR_KVM_MISSING_CAP] = "KVMMissingCap",
};

EmuQmpErrorClass emu_qmp_error_class_from_name(const char *name)
{
        for (size_t i = 0; name && i < G_N_ELEMENTS(class_names); i++)
                if (strcmp(class_names[i], name) == 0)
                        return (EmuQmpErrorClass)i;
        return EMU_QMP_ERROR_GENERIC;
}

const char *emu_qmp_error_class_name(EmuQmpErrorClass cls)
{
        if ((size_t)cls >= G_N_ELEMENTS(class_names))
                return class_names[EMU_QMP_ERROR_GENERIC];
        return class_names[cls];
}
