/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Replay a libFuzzer target over saved inputs under gcc: every file named on
 * the command line, or inside a directory named there, goes through
 * LLVMFuzzerTestOneInput once. A crash or abort fails the test. (A shared
 * replay main in tests/fuzz/ takes this role once that directory has its
 * meson.build.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
        g_autofree char *contents = NULL;
        gsize len = 0;
        g_autoptr(GError) err = NULL;
        if (!g_file_get_contents(path, &contents, &len, &err)) {
                fprintf(stderr, "%s\n", err->message);
                return -1;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)contents, len);
        return 0;
}

int main(int argc, char **argv)
{
        unsigned n = 0;
        for (int i = 1; i < argc; i++) {
                if (!g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
                        if (replay_file(argv[i]) < 0)
                                return 1;
                        n++;
                        continue;
                }
                g_autoptr(GError) err = NULL;
                g_autoptr(GDir) dir = g_dir_open(argv[i], 0, &err);
                if (!dir) {
                        fprintf(stderr, "%s\n", err->message);
                        return 1;
                }
                const char *name;
                while ((name = g_dir_read_name(dir))) {
                        g_autofree char *path = g_build_filename(argv[i], name, NULL);
                        if (replay_file(path) < 0)
                                return 1;
                        n++;
                }
        }
        printf("replayed %u inputs\n", n);
        return n > 0 ? 0 : 1;
}
