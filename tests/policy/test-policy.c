/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-policy: the policy parser and compiler, without running anything:
 * each syntax feature, each error naming file:line, includes, the admin
 * override lookup, and the compiled filter's attributes.
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <seccomp.h>
#include <string.h>

#include "policy-compile.h"
#include "policy-names.h"
#include "policy.h"

static char *tmpdir;

static void put(const char *dir, const char *name, const char *text)
{
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autoptr(GError) err = NULL;
        g_assert_true(g_file_set_contents(path, text, -1, &err));
}

static EmuPolicy *parse(const char *text, GError **error)
{
        const char *dirs[] = { tmpdir, NULL };
        return emu_policy_load_data(text, strlen(text), "t.policy", dirs, error);
}

static const EmuPolicyRule *rule(const EmuPolicy *p, guint i)
{
        g_assert_cmpuint(i, <, p->rules->len);
        return p->rules->pdata[i];
}

static void test_syntax(void)
{
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPolicy) p = parse("# comment\n"
                                       "\n"
                                       "  read   # trailing comment\n"
                                       "@default errno:EACCES\n"
                                       "socket: arg0 == AF_UNIX\n"
                                       "ioctl: arg1 in {FIONBIO, TCGETS, 0x5401}\n"
                                       "mmap: arg2 & PROT_EXEC == 0\n"
                                       "fcntl: arg1 != F_SETOWN, arg0 <= 1023\n"
                                       "openat: arg2 == O_RDONLY|O_CLOEXEC\n"
                                       "kill: arg0 == -1\n",
                                       &err);
        g_assert_no_error(err);
        g_assert_cmpint(p->default_action, ==, EMU_POLICY_DEFAULT_ERRNO);
        g_assert_cmpint(p->default_errno, ==, EACCES);
        g_assert_cmpuint(p->rules->len, ==, 7);
        g_assert_cmpstr(rule(p, 0)->syscall, ==, "read");
        g_assert_cmpuint(rule(p, 0)->n_conds, ==, 0);
        g_assert_cmpstr(rule(p, 0)->origin, ==, "t.policy:3");
        const EmuPolicyRule *r = rule(p, 1);
        g_assert_cmpint(r->nr, ==, seccomp_syscall_resolve_name("socket"));
        g_assert_cmpuint(r->conds[0].arg, ==, 0);
        g_assert_cmpint(r->conds[0].op, ==, EMU_CMP_EQ);
        g_assert_cmpuint(r->conds[0].values[0], ==, 1);
        r = rule(p, 2);
        g_assert_cmpuint(r->conds[0].arg, ==, 1);
        g_assert_cmpuint(r->conds[0].n_values, ==, 3);
        g_assert_cmpuint(r->conds[0].values[2], ==, 0x5401);
        r = rule(p, 3);
        g_assert_cmpint(r->conds[0].op, ==, EMU_CMP_MASKED_EQ);
        g_assert_cmpuint(r->conds[0].mask, ==, 4);
        g_assert_cmpuint(r->conds[0].values[0], ==, 0);
        r = rule(p, 4);
        g_assert_cmpuint(r->n_conds, ==, 2);
        g_assert_cmpint(r->conds[0].op, ==, EMU_CMP_NE);
        g_assert_cmpint(r->conds[1].op, ==, EMU_CMP_LE);
        g_assert_cmpuint(r->conds[1].values[0], ==, 1023);
        g_assert_cmpstr(r->text, ==, "arg1 != F_SETOWN, arg0 <= 1023");
        g_assert_cmpuint(rule(p, 5)->conds[0].values[0], ==, 02000000);
        g_assert_cmpuint(rule(p, 6)->conds[0].values[0], ==, (uint64_t)-1);

        g_autoptr(EmuPolicy) d = parse("@default kill\nread\n@errno ENOSYS clone3 io_uring_setup\n",
                                       &err);
        g_assert_no_error(err);
        g_assert_cmpint(d->default_action, ==, EMU_POLICY_DEFAULT_KILL);
        g_assert_cmpint(rule(d, 1)->deny_errno, ==, ENOSYS);
        g_assert_cmpstr(rule(d, 2)->syscall, ==, "io_uring_setup");
        g_autoptr(EmuPolicy) l = parse("@default log\n", &err);
        g_assert_no_error(err);
        g_assert_cmpint(l->default_action, ==, EMU_POLICY_DEFAULT_LOG);
}

static void check_error(const char *text, int code, const char *want)
{
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPolicy) p = parse(text, &err);
        g_assert_null(p);
        g_assert_error(err, EMU_POLICY_ERROR, code);
        if (!strstr(err->message, want))
                g_error("\"%s\" does not contain \"%s\"", err->message, want);
}

static void test_errors(void)
{
        check_error("read\nfrobnicate\n", EMU_POLICY_ERROR_UNKNOWN_SYSCALL,
                    "t.policy:2: unknown syscall \"frobnicate\"");
        check_error("read\n\nsocket: arg0 = 1\n", EMU_POLICY_ERROR_SYNTAX, "t.policy:3: expected");
        check_error("socket: arg9 == 1\n", EMU_POLICY_ERROR_SYNTAX, "t.policy:1: expected arg0..arg5");
        check_error("socket: arg0 == AF_BOGUS\n", EMU_POLICY_ERROR_SYNTAX,
                    "t.policy:1: unknown value \"AF_BOGUS\"");
        check_error("ioctl: arg1 in {1, 2\n", EMU_POLICY_ERROR_SYNTAX, "t.policy:1: expected \"}\"");
        check_error("socket: arg0 == 1 junk\n", EMU_POLICY_ERROR_SYNTAX, "t.policy:1: unexpected");
        check_error("socket: arg0 == 1, arg0 == 2\n", EMU_POLICY_ERROR_SYNTAX, "tested twice");
        check_error("@default maybe\n", EMU_POLICY_ERROR_SYNTAX, "t.policy:1: @default takes");
        check_error("@default errno:EWHAT\n", EMU_POLICY_ERROR_SYNTAX, "unknown errno");
        check_error("@frob x\n", EMU_POLICY_ERROR_SYNTAX, "t.policy:1: unknown directive \"@frob\"");
        check_error("read\n@include nosuch\n", EMU_POLICY_ERROR_NOT_FOUND,
                    "t.policy:2: @include nosuch: policy \"nosuch\" not found");
        check_error("@include ../etc/passwd\n", EMU_POLICY_ERROR_SYNTAX, "invalid policy name");
        g_autoptr(GError) err = NULL;
        const char nul[] = "read\nwr\0ite\n";
        g_autoptr(EmuPolicy) p = emu_policy_load_data(nul, sizeof(nul) - 1, "n.policy", NULL, &err);
        g_assert_error(err, EMU_POLICY_ERROR, EMU_POLICY_ERROR_SYNTAX);
        g_assert_nonnull(strstr(err->message, "n.policy:1: NUL byte"));
}

static void test_includes(void)
{
        g_autoptr(GError) err = NULL;
        put(tmpdir, "inc-a.policy", "read\n@include inc-b\n");
        put(tmpdir, "inc-b.policy", "write\n");
        put(tmpdir, "inc-c.policy", "@include inc-a\n@include inc-b\n"); /* diamond, no loop */
        g_autoptr(EmuPolicy) p = parse("@include inc-c\nclose\n", &err);
        g_assert_no_error(err);
        g_assert_cmpuint(p->rules->len, ==, 3);
        g_assert_cmpstr(rule(p, 0)->syscall, ==, "read");
        g_assert_true(g_str_has_suffix(rule(p, 0)->origin, "inc-a.policy:1"));
        g_assert_cmpstr(rule(p, 1)->syscall, ==, "write");
        g_assert_cmpstr(rule(p, 2)->syscall, ==, "close");

        put(tmpdir, "loop-a.policy", "read\n@include loop-b\n");
        put(tmpdir, "loop-b.policy", "write\n\n@include loop-a\n");
        g_clear_error(&err);
        g_autoptr(EmuPolicy) q = parse("@include loop-a\n", &err);
        g_assert_error(err, EMU_POLICY_ERROR, EMU_POLICY_ERROR_INCLUDE_LOOP);
        g_assert_nonnull(strstr(err->message, "loop-b.policy:3: include loop: loop-a -> loop-b -> loop-a"));

        put(tmpdir, "sub-default.policy", "@default log\n");
        g_clear_error(&err);
        g_autoptr(EmuPolicy) r = parse("@include sub-default\n", &err);
        g_assert_error(err, EMU_POLICY_ERROR, EMU_POLICY_ERROR_SYNTAX);
        g_assert_nonnull(strstr(err->message, "sub-default.policy:1: @default belongs"));

        put(tmpdir, "bad-inner.policy", "read\nnot_a_syscall\n");
        g_clear_error(&err);
        g_autoptr(EmuPolicy) s = parse("@include bad-inner\n", &err);
        g_assert_error(err, EMU_POLICY_ERROR, EMU_POLICY_ERROR_UNKNOWN_SYSCALL);
        g_assert_nonnull(strstr(err->message, "bad-inner.policy:2: unknown syscall"));
}

static void test_lookup(void)
{
        g_autoptr(GError) err = NULL;
        g_autofree char *admin = g_build_filename(tmpdir, "etc", NULL);
        g_autofree char *shipped = g_build_filename(tmpdir, "share", NULL);
        g_assert_cmpint(g_mkdir_with_parents(admin, 0755), ==, 0);
        g_assert_cmpint(g_mkdir_with_parents(shipped, 0755), ==, 0);
        const char *dirs[] = { admin, shipped, NULL };

        put(shipped, "k.policy", "@include common\nread\n");
        put(shipped, "common.policy", "write\n");
        g_autoptr(EmuPolicy) a = emu_policy_load("k", dirs, &err);
        g_assert_no_error(err);
        g_assert_true(g_str_has_prefix(a->path, shipped));
        g_assert_true(emu_policy_allows_always(a, "write"));

        /* An admin copy wins, for the policy and for what it includes. */
        put(admin, "common.policy", "getpid\n");
        g_autoptr(EmuPolicy) b = emu_policy_load("k", dirs, &err);
        g_assert_no_error(err);
        g_assert_true(g_str_has_prefix(b->path, shipped));
        g_assert_false(emu_policy_allows_always(b, "write"));
        g_assert_true(emu_policy_allows_always(b, "getpid"));
        put(admin, "k.policy", "close\n");
        g_autofree char *found = emu_policy_find("k", dirs, &err);
        g_assert_true(g_str_has_prefix(found, admin));

        g_autofree char *none = emu_policy_find("nope", dirs, &err);
        g_assert_null(none);
        g_assert_error(err, EMU_POLICY_ERROR, EMU_POLICY_ERROR_NOT_FOUND);
        g_clear_error(&err);
        g_autofree char *bad = emu_policy_find("../k", dirs, &err);
        g_assert_null(bad);
        g_clear_error(&err);
}

static void test_shipped(void)
{
        g_autoptr(GError) err = NULL;
        g_autofree char *dir = g_build_filename(g_getenv("EMUD_SOURCE_ROOT"), "policy", "policies",
                                                NULL);
        const char *dirs[] = { dir, NULL };
        g_autoptr(EmuPolicy) p = emu_policy_load("vhost-user-blk", dirs, &err);
        g_assert_no_error(err);
        g_assert_cmpint(p->default_action, ==, EMU_POLICY_DEFAULT_KILL);
        static const char *const never[] = { "execve", "execveat", "ptrace", "mount", "fork",
                                             "socket", "bpf", "unshare", "setns", "pivot_root" };
        for (size_t i = 0; i < G_N_ELEMENTS(never); i++)
                g_assert_false(emu_policy_allows_always(p, never[i]));
        g_assert_true(emu_policy_allows_always(p, "getppid")); /* the benchmark's call */
}

static void test_compile(void)
{
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPolicy) p = parse("read\nsocket: arg0 == AF_UNIX\nioctl: arg1 in {1, 2, 3}\n"
                                       "fcntl: arg1 in {1, 2}, arg2 in {3, 4}\nread: arg0 == 1\n"
                                       "@errno ENOSYS clone3\n",
                                       &err);
        g_assert_no_error(err);
        scmp_filter_ctx ctx = NULL;
        uint32_t v = 0;
        g_assert_cmpint(emu_policy_build(p, 0, &ctx), ==, 0);
        g_assert_cmpint(seccomp_attr_get(ctx, SCMP_FLTATR_CTL_OPTIMIZE, &v), ==, 0);
        g_assert_cmpuint(v, ==, 2);
        g_assert_cmpint(seccomp_attr_get(ctx, SCMP_FLTATR_ACT_DEFAULT, &v), ==, 0);
        g_assert_cmpuint(v, ==, SCMP_ACT_KILL_PROCESS);
        g_assert_cmpint(seccomp_attr_get(ctx, SCMP_FLTATR_ACT_BADARCH, &v), ==, 0);
        g_assert_cmpuint(v, ==, SCMP_ACT_KILL_PROCESS);
        seccomp_release(ctx);

        g_assert_cmpint(emu_policy_build(p, EMU_COMPILE_NOTIFY | EMU_COMPILE_NO_OPTIMIZE, &ctx),
                        ==, 0);
        g_assert_cmpint(seccomp_attr_get(ctx, SCMP_FLTATR_CTL_OPTIMIZE, &v), ==, 0);
        g_assert_cmpuint(v, ==, 1);
        g_assert_cmpint(seccomp_attr_get(ctx, SCMP_FLTATR_ACT_DEFAULT, &v), ==, 0);
        g_assert_cmpuint(v, ==, SCMP_ACT_NOTIFY);
        seccomp_release(ctx);

        g_autoptr(EmuBpf) bpf = NULL;
        g_assert_cmpint(emu_policy_compile(p, 0, &bpf), ==, 0);
        g_assert_cmpuint(bpf->prog.len, >, 5);
}

static bool same_program(const EmuBpf *a, const EmuBpf *b)
{
        return a->prog.len == b->prog.len &&
               memcmp(a->prog.filter, b->prog.filter, a->prog.len * sizeof(*a->prog.filter)) == 0;
}

/* Compiled programs are reused by content: never one for another policy or other flags. */
static void test_compile_cache(void)
{
        g_autoptr(EmuPolicy) p = parse("read\nsocket: arg0 == 1\n", NULL);
        g_autoptr(EmuPolicy) q = parse("read\nsocket: arg0 == 2\n", NULL);
        g_autoptr(EmuPolicy) p2 = parse("# the same as p\nread\n\nsocket: arg0 == 1\n", NULL);
        g_assert_nonnull(p);
        g_assert_nonnull(q);
        g_assert_nonnull(p2);
        g_autoptr(EmuBpf) a = NULL, b = NULL, c = NULL, d = NULL;
        g_assert_cmpint(emu_policy_compile(p, 0, &a), ==, 0);
        g_assert_cmpint(emu_policy_compile(q, 0, &b), ==, 0);
        g_assert_cmpint(emu_policy_compile(p2, 0, &c), ==, 0);
        g_assert_cmpint(emu_policy_compile(p, EMU_COMPILE_NOTIFY, &d), ==, 0);
        g_assert_false(same_program(a, b));
        g_assert_true(same_program(a, c));
        g_assert_false(same_program(a, d));
        g_assert_true(a->prog.filter != c->prog.filter); /* each caller owns its copy */
}

static void test_dump(void)
{
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPolicy) p = parse("@default kill\nread\nsocket: arg0 == AF_UNIX\n"
                                       "ioctl: arg1 == FIONBIO\n@errno ENOSYS clone3\n", &err);
        g_assert_no_error(err);
        g_autoptr(GHashTable) learned = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_add(learned, "write");
        g_hash_table_add(learned, "ioctl");
        g_hash_table_add(learned, "read");
        g_autofree char *text = emu_policy_dump_learned(p, learned, "learned\nfrom a test");
        g_test_message("%s", text);
        g_autoptr(EmuPolicy) q = parse(text, &err);
        g_assert_no_error(err);
        g_assert_cmpint(q->default_action, ==, EMU_POLICY_DEFAULT_KILL);
        g_assert_true(emu_policy_allows_always(q, "read"));
        g_assert_true(emu_policy_allows_always(q, "write"));
        g_assert_true(emu_policy_allows_always(q, "ioctl")); /* widened */
        g_assert_false(emu_policy_allows_always(q, "socket"));
        g_assert_nonnull(strstr(text, "socket: arg0 == AF_UNIX\n"));
        g_assert_nonnull(strstr(text, "@errno 38 clone3\n"));
        g_assert_nonnull(strstr(text, "# from a test\n"));
}

static void test_format(void)
{
        uint64_t a[6] = { 2, 1 | 02000000, 0, 0, 0, 0 };
        g_autofree char *s = emu_syscall_format(41, "socket", a);
        g_assert_cmpstr(s, ==, "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0)");
        uint64_t b[6] = { 3, 0x5421, 0x7fff0000, 0, 0, 0 };
        g_autofree char *t = emu_syscall_format(16, "ioctl", b);
        g_assert_cmpstr(t, ==, "ioctl(3, FIONBIO, 0x7fff0000)");
        g_autofree char *u = emu_syscall_format(999, NULL, b);
        g_assert_true(g_str_has_prefix(u, "syscall_999(3, "));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_autoptr(GError) err = NULL;
        tmpdir = g_dir_make_tmp("emud-policy-XXXXXX", &err);
        g_assert_no_error(err);
        g_test_add_func("/policy/syntax", test_syntax);
        g_test_add_func("/policy/errors", test_errors);
        g_test_add_func("/policy/includes", test_includes);
        g_test_add_func("/policy/lookup", test_lookup);
        g_test_add_func("/policy/shipped", test_shipped);
        g_test_add_func("/policy/compile", test_compile);
        g_test_add_func("/policy/compile-cache", test_compile_cache);
        g_test_add_func("/policy/dump", test_dump);
        g_test_add_func("/policy/format", test_format);
        int r = g_test_run();
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
        (void)!system(cmd);
        return r;
}
