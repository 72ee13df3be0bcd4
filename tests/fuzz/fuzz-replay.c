/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-replay: a main() for fuzz targets when the compiler has no libFuzzer
 * (gcc): run LLVMFuzzerTestOneInput once on every file named on the command
 * line, or in the directories named, so the saved corpus is a plain test.
 */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
        g_autofree char *data = NULL;
        gsize len = 0;
        g_autoptr(GError) err = NULL;
        if (!g_file_get_contents(path, &data, &len, &err)) {
                fprintf(stderr, "%s\n", err->message);
                return 1;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)data, len);
        printf("ok %s\n", path);
        return 0;
}

int main(int argc, char **argv)
{
        int failed = 0, n = 0;
        for (int i = 1; i < argc; i++) {
                if (g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
                        g_autoptr(GDir) d = g_dir_open(argv[i], 0, NULL);
                        for (const char *name; d && (name = g_dir_read_name(d));) {
                                g_autofree char *p = g_build_filename(argv[i], name, NULL);
                                failed |= run_file(p);
                                n++;
                        }
                } else {
                        failed |= run_file(argv[i]);
                        n++;
                }
        }
        printf("%d inputs replayed\n", n);
        return failed || n == 0;
}
