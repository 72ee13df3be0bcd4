/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-policy: the policy parser and compiler on arbitrary bytes. Includes
 * resolve against the shipped policies directory when EMUD_SOURCE_ROOT is
 * set, so "@include base" inputs exercise the include path too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy-compile.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static char *dir;
        if (!dir) {
                const char *src = getenv("EMUD_SOURCE_ROOT");
                dir = g_build_filename(src ? src : ".", "policy", "policies", NULL);
        }
        const char *dirs[] = { dir, NULL };
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPolicy) p = emu_policy_load_data((const char *)data, size, "fuzz.policy",
                                                      dirs, &err);
        if (!p) {
                g_assert_nonnull(err);
                g_assert_true(g_str_has_prefix(err->message, "fuzz.policy:") ||
                              g_str_has_prefix(err->message, dir));
                return 0;
        }
        g_autoptr(EmuBpf) bpf = NULL;
        if (emu_policy_compile(p, EMU_COMPILE_NOTIFY, &bpf) == 0)
                g_assert_cmpuint(bpf->prog.len, >, 0);
        g_autoptr(GHashTable) learned = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_add(learned, "read");
        g_autofree char *dump = emu_policy_dump_learned(p, learned, "fuzz");
        /* A dump must load again. */
        g_autoptr(EmuPolicy) again = emu_policy_load_data(dump, strlen(dump), "dump", dirs, &err);
        g_assert_nonnull(again);
        return 0;
}
