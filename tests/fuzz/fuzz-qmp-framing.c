/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz QMP framing: arbitrary bytes, fed in arbitrary chunks, through the
 * decoder that both emud's QMP client and the proxy's sessions use. Every
 * value that comes out must survive encode and decode unchanged, and the
 * decoder must never hold more than its cap plus one chunk.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "emu-util.h"
#include "qmp-codec.h"

#define MAX_MESSAGE 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(json_t *value)
{
        size_t len = 0;
        g_autofree char *text = emu_qmp_encode(value, &len);
        if (!text)
                return; /* jansson refuses some values it parsed (e.g. NaN never; depth) */
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(len + 1);
        emu_qmp_decoder_feed(d, text, len);
        json_t *again = NULL;
        if (emu_qmp_decoder_next_value(d, &again, NULL) != 1 || !json_equal(value, again))
                abort();
        json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size == 0)
                return 0;
        /* The first byte picks the chunk size, so splits land everywhere. */
        size_t chunk = (size_t)(data[0] % 64) + 1;
        data++;
        size--;
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(MAX_MESSAGE);
        for (size_t off = 0; off < size; off += chunk) {
                size_t n = size - off < chunk ? size - off : chunk;
                emu_qmp_decoder_feed(d, data + off, n);
                for (;;) {
                        json_t *value = NULL;
                        g_autofree char *why = NULL;
                        int r = emu_qmp_decoder_next_value(d, &value, &why);
                        if (r == 0)
                                break;
                        if (r < 0) {
                                if (!why)
                                        abort();
                                continue;
                        }
                        roundtrip(value);
                        json_decref(value);
                }
                if (emu_qmp_decoder_pending(d) > MAX_MESSAGE + chunk)
                        abort();
        }
        return 0;
}
