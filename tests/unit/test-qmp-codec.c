/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-qmp-codec: QMP framing. The decoder sees whatever a guest-controlled
 * QEMU or an emulator writes, split wherever the socket splits it, so every
 * test checks the exact sequence of results and that the decoder recovers.
 */
#include <errno.h>
#include <string.h>

#include "emu-util.h"
#include "qmp-codec.h"

#define CAP 64

static void feed_str(EmuQmpDecoder *d, const char *s)
{
        emu_qmp_decoder_feed(d, s, strlen(s));
}

/* The next result must be a message equal to the JSON text want. */
static void expect_msg(EmuQmpDecoder *d, const char *want)
{
        json_t *msg = NULL;
        g_autofree char *err = NULL;
        int r = emu_qmp_decoder_next(d, &msg, &err);

        if (r != 1)
                g_test_message("next() = %d (%s), expected %s", r, err ? err : "", want);
        g_assert_cmpint(r, ==, 1);
        g_assert_null(err);
        g_autoptr(json_t) got = msg;
        g_autoptr(json_t) expected = json_loads(want, 0, NULL);
        g_assert_nonnull(expected);
        g_assert_true(json_equal(got, expected));
}

/* The next result must be the error r, explained, with *ret_msg left alone. */
static void expect_error(EmuQmpDecoder *d, int want, const char *fragment)
{
        json_t *msg = NULL;
        g_autofree char *err = NULL;
        int r = emu_qmp_decoder_next(d, &msg, &err);

        g_assert_cmpint(r, ==, want);
        g_assert_null(msg);
        g_assert_nonnull(err);
        g_assert_cmpstr(err, !=, "");
        g_test_message("error: %s", err);
        if (fragment)
                g_assert_nonnull(strstr(err, fragment));
}

static void expect_none(EmuQmpDecoder *d)
{
        json_t *msg = NULL;
        g_autofree char *err = NULL;

        g_assert_cmpint(emu_qmp_decoder_next(d, &msg, &err), ==, 0);
        g_assert_null(msg);
        g_assert_null(err);
}

static void test_byte_by_byte(void)
{
        static const char text[] = "{\"return\": {\"a\": [1, 2], \"s\": \"x y\"}}\r\n";
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(4096);

        /* Complete with its last brace; the line end after it is just a blank. */
        size_t last = strlen(text) - 3;
        for (size_t i = 0; i < last; i++) {
                emu_qmp_decoder_feed(d, text + i, 1);
                g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, i + 1);
                expect_none(d);
        }
        emu_qmp_decoder_feed(d, text + last, 1);
        expect_msg(d, "{\"return\": {\"a\": [1, 2], \"s\": \"x y\"}}");
        emu_qmp_decoder_feed(d, "\r\n", 2);
        expect_none(d);
        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, 0);
}

static void test_several_in_one_feed(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(4096);

        feed_str(d, "{\"a\":1}\r\n{\"b\":2}\n{\"event\":\"STOP\"}\r\n{\"part");
        expect_msg(d, "{\"a\":1}");
        expect_msg(d, "{\"b\":2}");
        expect_msg(d, "{\"event\":\"STOP\"}");
        expect_none(d);
        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, strlen("{\"part"));
        feed_str(d, "ial\":true}\r\n");
        expect_msg(d, "{\"partial\":true}");
        expect_none(d);
}

static void test_crlf(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(4096);

        /* Complete at its brace; a \r\n split after it is only blanks. */
        feed_str(d, "{\"QMP\": {\"version\": {}}}\r");
        expect_msg(d, "{\"QMP\": {\"version\": {}}}");
        feed_str(d, "\n");
        expect_none(d);
        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, 0);
}

static void test_blank_lines(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(4096);

        feed_str(d, "\n\r\n   \t\r\n\n");
        expect_none(d);
        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, 0);
        feed_str(d, "\r\n{\"return\":{}}\r\n\r\n");
        expect_msg(d, "{\"return\":{}}");
        expect_none(d);
}

static void test_malformed(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(4096);
        json_t *msg = NULL;

        feed_str(d, "{bad}\r\n{\"ok\":1}\r\n{\"a\":1,}\n{\"trailing\":1} x\r\n{\"ok\":2}\r\n");
        expect_error(d, -EBADMSG, NULL);
        expect_msg(d, "{\"ok\":1}");
        expect_error(d, -EBADMSG, NULL);
        expect_msg(d, "{\"trailing\":1}");
        /* The caller may not want the text; the junk is consumed all the same. */
        g_assert_cmpint(emu_qmp_decoder_next(d, &msg, NULL), ==, -EBADMSG);
        g_assert_null(msg);
        expect_msg(d, "{\"ok\":2}");
        expect_none(d);

        /* Stray closers and bytes no JSON text has: one error up to a newline or '{'. */
        feed_str(d, "} ] \x01 {\"ok\":3}\n:,\n");
        expect_error(d, -EBADMSG, NULL);
        expect_msg(d, "{\"ok\":3}");
        expect_error(d, -EBADMSG, NULL);
        expect_none(d);

        /* An unclosed value swallows what follows, as in QEMU, until a 0xFF resets. */
        feed_str(d, "{\"a\":[1,\n{\"lost\":1}\n");
        expect_none(d);
        feed_str(d, "\xff{\"ok\":4}\"ab\xff\n");
        expect_error(d, -EBADMSG, NULL);
        expect_msg(d, "{\"ok\":4}");
        expect_error(d, -EBADMSG, NULL); /* even inside a string */
        expect_none(d);
        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, 0);
}

/* As QEMU reads it: values, not lines. */
static void test_streaming(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(4096);

        /* Several on one line, with and without blanks between them. */
        feed_str(d, "{\"a\":1}{\"b\":2} {\"c\":[3]}\n");
        expect_msg(d, "{\"a\":1}");
        expect_msg(d, "{\"b\":2}");
        expect_msg(d, "{\"c\":[3]}");
        expect_none(d);

        /* One over several lines, pretty-printed. */
        feed_str(d, "{\n  \"execute\": \"query-status\",\n  \"id\": [1,\n 2]\n");
        expect_none(d);
        feed_str(d, "}");
        expect_msg(d, "{\"execute\":\"query-status\",\"id\":[1,2]}");
        expect_none(d);

        /* Braces, brackets, quotes and backslashes inside strings do not count. */
        feed_str(d, "{\"s\":\"}]{[\\\"\\\\\"}");
        expect_msg(d, "{\"s\":\"}]{[\\\"\\\\\"}");
        expect_none(d);
        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, 0);
}

static void test_not_object(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(4096);

        feed_str(d, "[1,2]\r\n42\r\n\"str\"null true\r\n{}\r\n");
        for (int i = 0; i < 5; i++)
                expect_error(d, -EBADMSG, "not a JSON object");
        expect_msg(d, "{}");
        expect_none(d);
}

static char *long_line(size_t n)
{
        char *s = g_malloc(n + 1);
        memset(s, 'x', n);
        s[n] = '\0';
        return s;
}

/* Exactly the cap is allowed; one byte more is not. */
static void test_cap_boundary(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(CAP);
        g_autofree char *pad = long_line(CAP - strlen("{\"s\":\"\"}"));
        g_autofree char *fits = g_strdup_printf("{\"s\":\"%s\"}", pad);
        g_autofree char *over = g_strdup_printf("{\"s\":\"%sx\"}", pad);

        g_assert_cmpuint(strlen(fits), ==, CAP);
        feed_str(d, fits);
        expect_msg(d, fits);
        feed_str(d, "\n");
        expect_none(d);
        feed_str(d, over);
        feed_str(d, "\n{\"next\":1}\n");
        expect_error(d, -EMSGSIZE, NULL);
        expect_msg(d, "{\"next\":1}");
        expect_none(d);
}

static void test_oversize_same_feed(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(CAP);
        g_autofree char *big = long_line(1000);
        g_autofree char *text = g_strdup_printf("{\"a\":0}\r\n%s\r\n{\"a\":1}\r\n", big);

        feed_str(d, text);
        expect_msg(d, "{\"a\":0}");
        expect_error(d, -EMSGSIZE, NULL);
        expect_msg(d, "{\"a\":1}");
        expect_none(d);
        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, 0);
}

/*
 * The newline comes long after the cap was passed: the decoder must report
 * once, keep no more than the cap meanwhile, and find the next message.
 */
static void test_oversize_later_feeds(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(CAP);
        g_autofree char *chunk = long_line(100);

        feed_str(d, chunk);
        expect_error(d, -EMSGSIZE, "64");
        for (int i = 0; i < 50; i++) {
                feed_str(d, chunk);
                expect_none(d);
                g_assert_cmpuint(emu_qmp_decoder_pending(d), <=, CAP);
        }
        feed_str(d, "still-the-long-word\r\n{\"a\":1}\r\n");
        expect_msg(d, "{\"a\":1}");
        expect_none(d);
        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, 0);
}

/* As above, one byte at a time, with the caller asking after every byte. */
static void test_oversize_byte_by_byte(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(CAP);
        int reports = 0;

        for (int i = 0; i < 10 * CAP; i++) {
                json_t *msg = NULL;
                g_autofree char *err = NULL;
                emu_qmp_decoder_feed(d, "y", 1);
                int r = emu_qmp_decoder_next(d, &msg, &err);
                g_assert_true(r == 0 || r == -EMSGSIZE);
                g_assert_null(msg);
                reports += r == -EMSGSIZE;
                g_assert_cmpuint(emu_qmp_decoder_pending(d), <=, CAP);
        }
        g_assert_cmpint(reports, ==, 1);
        static const char tail[] = "\r\n{\"b\":2}\r\n";
        for (size_t i = 0; i < strlen(tail); i++)
                emu_qmp_decoder_feed(d, tail + i, 1);
        expect_msg(d, "{\"b\":2}");
        expect_none(d);
}

/* A caller that feeds several times before asking still gets one report. */
static void test_oversize_feeds_before_next(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(CAP);
        g_autofree char *chunk = long_line(40);

        for (int i = 0; i < 10; i++)
                feed_str(d, chunk);
        feed_str(d, "\n{\"c\":3}\n");
        expect_error(d, -EMSGSIZE, NULL);
        expect_msg(d, "{\"c\":3}");
        expect_none(d);
}

static void test_pending(void)
{
        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(4096);

        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, 0);
        feed_str(d, "{\"a\":1}\r\n{\"b\"");
        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, strlen("{\"a\":1}\r\n{\"b\""));
        expect_msg(d, "{\"a\":1}");
        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, strlen("\r\n{\"b\""));
        emu_qmp_decoder_feed(d, "", 0);
        expect_none(d); /* the blanks before the partial message go */
        g_assert_cmpuint(emu_qmp_decoder_pending(d), ==, strlen("{\"b\""));
        emu_qmp_decoder_free(NULL);
}

static void test_encode(void)
{
        g_autoptr(json_t) msg = json_pack("{s:s, s:{s:[i, s], s:b, s:s}}", "execute",
                                           "device_add", "arguments", "a", 1, "x", "b", 1,
                                           "s", "line\nbreak \"quoted\"");
        size_t len = 0;
        g_autofree char *text = emu_qmp_encode(msg, &len);

        g_assert_nonnull(text);
        g_assert_cmpstr(text, ==,
                        "{\"execute\":\"device_add\",\"arguments\":{\"a\":[1,\"x\"],\"b\":true,"
                        "\"s\":\"line\\nbreak \\\"quoted\\\"\"}}\r\n");
        g_assert_cmpuint(len, ==, strlen(text));
        /* One frame: the only newline is the terminator. */
        g_assert_true(strchr(text, '\n') == text + len - 1);

        g_autoptr(EmuQmpDecoder) d = emu_qmp_decoder_new(4096);
        emu_qmp_decoder_feed(d, text, len);
        emu_qmp_decoder_feed(d, text, len);
        for (int i = 0; i < 2; i++) {
                json_t *back = NULL;
                g_assert_cmpint(emu_qmp_decoder_next(d, &back, NULL), ==, 1);
                g_autoptr(json_t) owned = back;
                g_assert_true(json_equal(owned, msg));
        }
        expect_none(d);

        g_autoptr(json_t) obj = json_object();
        g_autofree char *empty = emu_qmp_encode(obj, NULL);
        g_assert_cmpstr(empty, ==, "{}\r\n");
}

static void test_error_classes(void)
{
        static const struct {
                EmuQmpErrorClass cls;
                const char *name;
        } classes[] = {
                { EMU_QMP_ERROR_GENERIC, "GenericError" },
                { EMU_QMP_ERROR_COMMAND_NOT_FOUND, "CommandNotFound" },
                { EMU_QMP_ERROR_DEVICE_NOT_ACTIVE, "DeviceNotActive" },
                { EMU_QMP_ERROR_DEVICE_NOT_FOUND, "DeviceNotFound" },
                { EMU_QMP_ERROR_KVM_MISSING_CAP, "KVMMissingCap" },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(classes); i++) {
                g_assert_cmpstr(emu_qmp_error_class_name(classes[i].cls), ==, classes[i].name);
                g_assert_cmpint(emu_qmp_error_class_from_name(classes[i].name), ==,
                                classes[i].cls);
        }

        /* Whatever a peer invents is still an error, of the generic class. */
        static const char *const unknown[] = { "NoSuchClass", "", "genericerror",
                                               "CommandNotFound ", NULL };
        for (size_t i = 0; i < G_N_ELEMENTS(unknown); i++)
                g_assert_cmpint(emu_qmp_error_class_from_name(unknown[i]), ==,
                                EMU_QMP_ERROR_GENERIC);
        g_assert_cmpstr(emu_qmp_error_class_name((EmuQmpErrorClass)99), ==, "GenericError");
        g_assert_cmpstr(emu_qmp_error_class_name((EmuQmpErrorClass)-1), ==, "GenericError");
        g_assert_cmpuint(EMU_QMP_ERROR, !=, 0);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/qmp-codec/decoder/byte-by-byte", test_byte_by_byte);
        g_test_add_func("/qmp-codec/decoder/several-in-one-feed", test_several_in_one_feed);
        g_test_add_func("/qmp-codec/decoder/crlf", test_crlf);
        g_test_add_func("/qmp-codec/decoder/blank-lines", test_blank_lines);
        g_test_add_func("/qmp-codec/decoder/malformed", test_malformed);
        g_test_add_func("/qmp-codec/decoder/streaming", test_streaming);
        g_test_add_func("/qmp-codec/decoder/not-object", test_not_object);
        g_test_add_func("/qmp-codec/decoder/cap-boundary", test_cap_boundary);
        g_test_add_func("/qmp-codec/decoder/oversize-same-feed", test_oversize_same_feed);
        g_test_add_func("/qmp-codec/decoder/oversize-later-feeds", test_oversize_later_feeds);
        g_test_add_func("/qmp-codec/decoder/oversize-byte-by-byte", test_oversize_byte_by_byte);
        g_test_add_func("/qmp-codec/decoder/oversize-feeds-before-next",
                        test_oversize_feeds_before_next);
        g_test_add_func("/qmp-codec/decoder/pending", test_pending);
        g_test_add_func("/qmp-codec/encode", test_encode);
        g_test_add_func("/qmp-codec/error-classes", test_error_classes);
        return g_test_run();
}
