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

/*
 * Framing follows QEMU's JSON streamer rather than lines: a message is one
 * JSON value, which may span lines or share a line with others. The scanner
 * below only finds where a value ends (strings with their escapes, and the
 * nesting of {} and []); jansson then parses exactly that text. As in QEMU,
 * a byte that cannot occur in UTF-8 (0xFF, say) abandons a partial value, so
 * a client can always get back in step after bad input. Scanning is
 * linear and resumes where it stopped, so input trickling in byte by byte
 * costs no rescans.
 */
typedef enum {
        SCAN_IDLE,      /* between values: whitespace is skipped */
        SCAN_CONTAINER, /* inside an object or array */
        SCAN_STRING,    /* a string at the top level */
        SCAN_WORD,      /* a number or keyword (or junk) at the top level */
        SCAN_JUNK,      /* bytes no JSON value starts with: up to a newline or '{' */
} ScanState;

struct EmuQmpDecoder {
        GByteArray *buf;
        size_t max_message;
        ScanState state;
        size_t pos;        /* bytes of buf scanned so far */
        size_t depth;      /* SCAN_CONTAINER: open { and [ */
        bool in_string;    /* SCAN_CONTAINER: inside a string */
        bool escaped;      /* inside a string, after a backslash */
        bool discarding;   /* the current value outgrew max_message: drop it */
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
        g_byte_array_append(d->buf, buf, len);
}

size_t emu_qmp_decoder_pending(const EmuQmpDecoder *d)
{
        return d->buf->len;
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_word(char c)
{
        return g_ascii_isalnum(c) || c == '-' || c == '+' || c == '.';
}

/*
 * Bytes that never occur in UTF-8. QEMU's lexer abandons the message in
 * progress on one of them, and QMP clients send 0xFF to resynchronise after
 * bad input; the same holds here.
 */
static bool is_reset(char c)
{
        unsigned char u = (unsigned char)c;
        return u == 0xC0 || u == 0xC1 || u >= 0xF5;
}

/* Inside a string: true once its closing quote is consumed. */
static bool string_ends(EmuQmpDecoder *d, char c)
{
        if (d->escaped)
                d->escaped = false;
        else if (c == '\\')
                d->escaped = true;
        else if (c == '"')
                return true;
        return false;
}

/*
 * Scan on from d->pos; true when a value ends just before d->pos. The value
 * then starts at offset 0 (whitespace before it has been dropped).
 */
static bool scan(EmuQmpDecoder *d)
{
        const char *p = (const char *)d->buf->data;
        for (; d->pos < d->buf->len; d->pos++) {
                char c = p[d->pos];
                if (d->state != SCAN_IDLE && is_reset(c)) {
                        /* The value so far is bad; it ends here, and the next starts afresh. */
                        d->pos++;
                        d->state = SCAN_IDLE;
                        return true;
                }
                switch (d->state) {
                case SCAN_IDLE:
                        if (is_space(c))
                                break;
                        /* Drop the whitespace: the value starts at 0. */
                        g_byte_array_remove_range(d->buf, 0, d->pos);
                        p = (const char *)d->buf->data;
                        d->pos = 0;
                        if (c == '{' || c == '[') {
                                d->state = SCAN_CONTAINER;
                                d->depth = 1;
                        } else if (c == '"') {
                                d->state = SCAN_STRING;
                        } else if (is_word(c)) {
                                d->state = SCAN_WORD;
                        } else {
                                /* A stray '}', ':' or a byte no JSON text has here. */
                                d->state = SCAN_JUNK;
                        }
                        break;
                case SCAN_JUNK:
                        /* One error for the whole run, not one per byte. */
                        if (c == '\n' || c == '{') {
                                d->pos += c == '\n';
                                d->state = SCAN_IDLE;
                                return true;
                        }
                        break;
                case SCAN_STRING:
                        if (string_ends(d, c)) {
                                d->pos++;
                                d->state = SCAN_IDLE;
                                return true;
                        }
                        break;
                case SCAN_WORD:
                        if (!is_word(c)) {
                                d->state = SCAN_IDLE;
                                return true; /* c belongs to what comes next */
                        }
                        break;
                case SCAN_CONTAINER:
                        if (d->in_string) {
                                d->in_string = !string_ends(d, c);
                        } else if (c == '"') {
                                d->in_string = true;
                        } else if (c == '{' || c == '[') {
                                d->depth++;
                        } else if ((c == '}' || c == ']') && --d->depth == 0) {
                                d->pos++;
                                d->state = SCAN_IDLE;
                                return true;
                        }
                        break;
                }
        }
        /* A word ends with the input only once more input says so; idle: drop blanks. */
        if (d->state == SCAN_IDLE) {
                g_byte_array_set_size(d->buf, 0);
                d->pos = 0;
        }
        return false;
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
                bool complete = scan(d);
                size_t len = d->pos;
                if (!complete) {
                        if (d->discarding) {
                                g_byte_array_set_size(d->buf, 0);
                                d->pos = 0;
                        } else if (len > d->max_message) {
                                /* Too long already: drop it, and the rest of it as it comes. */
                                g_byte_array_set_size(d->buf, 0);
                                d->pos = 0;
                                d->discarding = true;
                                d->report_oversize = true;
                                continue;
                        }
                        return 0;
                }
                d->pos = 0;
                d->state = SCAN_IDLE;
                d->in_string = d->escaped = false;
                if (d->discarding || len > d->max_message) {
                        d->report_oversize = !d->discarding;
                        d->discarding = false;
                        g_byte_array_remove_range(d->buf, 0, len);
                        continue;
                }
                json_error_t jerr;
                json_t *value = json_loadb((const char *)d->buf->data, len, JSON_DECODE_ANY,
                                           &jerr);
                g_byte_array_remove_range(d->buf, 0, len);
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
