/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-emu-id: the id rule. Ids become file names, D-Bus object paths and
 * QEMU ids, so every way out of [A-Za-z0-9_-]{1,64} must be refused.
 */
#include <glib.h>
#include <string.h>

#include "emu-id.h"

static void test_valid(void)
{
        static const char *const ids[] = {
                "a", "Z", "0", "_", "-", "vm0", "my-vm_1", "ABC-def_123", "--", "0123456789",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
                g_test_message("id '%s'", ids[i]);
                g_assert_true(emu_id_valid(ids[i]));
        }
}

static void test_null_and_empty(void)
{
        g_assert_false(emu_id_valid(NULL));
        g_assert_false(emu_id_valid(""));
}

/* Anything that could walk a path or split a QEMU/D-Bus name. */
static void test_path_like(void)
{
        static const char *const ids[] = {
                "../x", "a/b", "a.b", ".", "..", "/", "/abs", "x/", "a:b", "a,b", "a=b", "a$b",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
                g_test_message("id '%s'", ids[i]);
                g_assert_false(emu_id_valid(ids[i]));
        }
}

static void test_length(void)
{
        char buf[201];

        memset(buf, 'a', sizeof(buf) - 1);
        buf[EMU_ID_MAX] = '\0';
        g_assert_cmpuint(strlen(buf), ==, 64);
        g_assert_true(emu_id_valid(buf));

        memset(buf, 'a', sizeof(buf) - 1);
        buf[EMU_ID_MAX + 1] = '\0';
        g_assert_false(emu_id_valid(buf));

        memset(buf, 'a', sizeof(buf) - 1);
        buf[200] = '\0';
        g_assert_false(emu_id_valid(buf));
}

static void test_spaces(void)
{
        static const char *const ids[] = { " ", "a b", " a", "a ", "a\tb" };
        for (size_t i = 0; i < G_N_ELEMENTS(ids); i++)
                g_assert_false(emu_id_valid(ids[i]));
}

/* Letters outside ASCII would pass a locale-aware isalnum(); they must not pass here. */
static void test_non_ascii(void)
{
        static const char *const ids[] = {
                "caf\xc3\xa9",          /* café */
                "\xc3\x84pfel",         /* Äpfel */
                "\xe6\x97\xa5\xe6\x9c\xac", /* 日本 */
                "a\xc2\xa0" "b",       /* no-break space */
                "\xff",                 /* not UTF-8 at all */
        };
        for (size_t i = 0; i < G_N_ELEMENTS(ids); i++)
                g_assert_false(emu_id_valid(ids[i]));
}

static void test_control_chars(void)
{
        char id[4] = "a?b";

        for (int c = 1; c < 0x20; c++) {
                id[1] = (char)c;
                g_assert_false(emu_id_valid(id));
        }
        id[1] = 0x7f;
        g_assert_false(emu_id_valid(id));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/emu-id/valid", test_valid);
        g_test_add_func("/emu-id/null-and-empty", test_null_and_empty);
        g_test_add_func("/emu-id/path-like", test_path_like);
        g_test_add_func("/emu-id/length", test_length);
        g_test_add_func("/emu-id/spaces", test_spaces);
        g_test_add_func("/emu-id/non-ascii", test_non_ascii);
        g_test_add_func("/emu-id/control-chars", test_control_chars);
        return g_test_run();
}
