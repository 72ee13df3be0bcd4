/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * policy: reading seccomp policy files (format in policy/FORMAT.md).
 *
 * The parser is a plain line scanner, not a grammar engine: a policy is a
 * list of lines and every error has to point at one of them. It is fed by
 * admins and is fuzzed, so every size it accepts is capped and nothing it
 * reads is trusted to be NUL-free or well formed. Included files are read
 * through the same lookup as the top-level policy, so an admin override of
 * "base" applies to every policy that includes it.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

#include "policy-names.h"
#include "policy.h"

#define MAX_FILE_SIZE (1024 * 1024)
#define MAX_LINE 4096
#define MAX_RULES 4096
#define MAX_DEPTH 16
#define MAX_EXPANSION 256 /* rules one line may turn into after "in {…}" */

G_DEFINE_QUARK(emu-policy-error-quark, emu_policy_error)

typedef struct {
        EmuPolicy *policy;
        const char *const *dirs;
        GPtrArray *stack;        /* names being read, outermost first */
        GHashTable *done;        /* names fully read: a second @include is a no-op */
} Loader;

typedef struct {
        const char *file;
        unsigned line;
        const char *p;           /* cursor in the line */
} Cursor;

static void rule_free(EmuPolicyRule *r)
{
        if (!r)
                return;
        g_free(r->syscall);
        g_free(r->origin);
        g_free(r->text);
        g_free(r);
}

void emu_policy_free(EmuPolicy *p)
{
        if (!p)
                return;
        g_free(p->name);
        g_free(p->path);
        if (p->rules)
                g_ptr_array_unref(p->rules);
        if (p->files)
                g_ptr_array_unref(p->files);
        g_free(p);
}

static bool valid_name(const char *name)
{
        if (!name || !*name || name[0] == '.' || strlen(name) > 64)
                return false;
        for (const char *c = name; *c; c++)
                if (!g_ascii_isalnum(*c) && *c != '_' && *c != '-' && *c != '.')
                        return false;
        return true;
}

char *emu_policy_find(const char *name, const char *const *dirs, GError **error)
{
        if (!valid_name(name)) {
                g_set_error(error, EMU_POLICY_ERROR, EMU_POLICY_ERROR_NOT_FOUND,
                            "invalid policy name \"%s\"", name ? name : "");
                return NULL;
        }
        g_autofree char *file = g_strconcat(name, ".policy", NULL);
        for (size_t i = 0; dirs && dirs[i]; i++) {
                g_autofree char *path = g_build_filename(dirs[i], file, NULL);
                if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
                        return g_steal_pointer(&path);
        }
        g_autofree char *where = dirs ? g_strjoinv(", ", (char **)dirs) : g_strdup("");
        g_set_error(error, EMU_POLICY_ERROR, EMU_POLICY_ERROR_NOT_FOUND,
                    "policy \"%s\" not found in %s", name, where);
        return NULL;
}

static bool fail(GError **error, const Cursor *c, int code, const char *fmt, ...)
        G_GNUC_PRINTF(4, 5);
static bool fail(GError **error, const Cursor *c, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error(error, EMU_POLICY_ERROR, code, "%s:%u: %s", c->file, c->line, msg);
        return false;
}

static void skip_ws(Cursor *c)
{
        while (*c->p == ' ' || *c->p == '\t')
                c->p++;
}

static bool is_ident(char ch)
{
        return g_ascii_isalnum(ch) || ch == '_';
}

/* An identifier or number token; empty when none is at the cursor. */
static char *take_word(Cursor *c)
{
        skip_ws(c);
        const char *start = c->p;
        if (*c->p == '-')
                c->p++;
        while (is_ident(*c->p))
                c->p++;
        return g_strndup(start, (gsize)(c->p - start));
}

static bool accept(Cursor *c, const char *tok)
{
        skip_ws(c);
        if (strncmp(c->p, tok, strlen(tok)) != 0)
                return false;
        c->p += strlen(tok);
        return true;
}

static bool parse_number(const char *w, uint64_t *ret)
{
        char *end = NULL;
        errno = 0;
        if (w[0] == '-') {
                long long v = strtoll(w, &end, 0);
                if (errno || *end || end == w)
                        return false;
                *ret = (uint64_t)v;
                return true;
        }
        unsigned long long v = strtoull(w, &end, 0);
        if (errno || *end || end == w)
                return false;
        *ret = v;
        return true;
}

/* term ('|' term)*, a term being a number or a known constant name. */
static bool parse_value(Cursor *c, uint64_t *ret, GError **error)
{
        uint64_t v = 0;
        do {
                g_autofree char *w = take_word(c);
                uint64_t t = 0;
                if (!*w)
                        return fail(error, c, EMU_POLICY_ERROR_SYNTAX, "expected a value at \"%s\"",
                                    c->p);
                if (!(g_ascii_isdigit(w[0]) || w[0] == '-' ? parse_number(w, &t)
                                                           : emu_constant_lookup(w, &t)))
                        return fail(error, c, EMU_POLICY_ERROR_SYNTAX, "unknown value \"%s\"", w);
                v |= t;
        } while (accept(c, "|"));
        *ret = v;
        return true;
}

static const struct {
        const char *name;
        int value;
} errnos[] = {
        { "EPERM", EPERM }, { "EACCES", EACCES }, { "ENOSYS", ENOSYS }, { "EINVAL", EINVAL },
        { "ENOENT", ENOENT }, { "EAFNOSUPPORT", EAFNOSUPPORT }, { "ENOTSUP", ENOTSUP },
};

/* EPERM, a few other names, or a number; -1 when it is none of them. */
static int parse_errno(const char *e)
{
        uint64_t v = 0;
        for (size_t i = 0; i < G_N_ELEMENTS(errnos); i++)
                if (strcmp(errnos[i].name, e) == 0)
                        return errnos[i].value;
        if (parse_number(e, &v) && v >= 1 && v <= 4095)
                return (int)v;
        return -1;
}

static bool parse_cond(Cursor *c, EmuPolicyCond *cond, GError **error)
{
        g_autofree char *w = take_word(c);
        if (strlen(w) != 4 || strncmp(w, "arg", 3) != 0 || w[3] < '0' || w[3] > '5')
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX,
                            "expected arg0..arg5, found \"%s\"", w);
        cond->arg = (unsigned)(w[3] - '0');
        cond->n_values = 1;
        if (accept(c, "&")) {
                if (!parse_value(c, &cond->mask, error))
                        return false;
                if (!accept(c, "=="))
                        return fail(error, c, EMU_POLICY_ERROR_SYNTAX,
                                    "expected \"==\" after a mask");
                cond->op = EMU_CMP_MASKED_EQ;
                return parse_value(c, &cond->values[0], error);
        }
        static const struct {
                const char *tok;
                EmuCmpOp op;
        } ops[] = { { "==", EMU_CMP_EQ }, { "!=", EMU_CMP_NE }, { "<=", EMU_CMP_LE },
                    { ">=", EMU_CMP_GE }, { "<", EMU_CMP_LT },  { ">", EMU_CMP_GT } };
        for (size_t i = 0; i < G_N_ELEMENTS(ops); i++)
                if (accept(c, ops[i].tok)) {
                        cond->op = ops[i].op;
                        return parse_value(c, &cond->values[0], error);
                }
        if (!accept(c, "in") || !accept(c, "{"))
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX,
                            "expected ==, !=, <, <=, >, >=, & or \"in {\" after %s", w);
        cond->op = EMU_CMP_EQ;
        cond->n_values = 0;
        do {
                if (cond->n_values == EMU_POLICY_MAX_SET)
                        return fail(error, c, EMU_POLICY_ERROR_LIMIT,
                                    "more than %d values in a set", EMU_POLICY_MAX_SET);
                if (!parse_value(c, &cond->values[cond->n_values++], error))
                        return false;
        } while (accept(c, ","));
        if (!accept(c, "}"))
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX, "expected \"}\" to close the set");
        return true;
}

static bool parse_rule(Loader *ld, Cursor *c, int deny_errno, GError **error)
{
        g_autofree char *name = take_word(c);
        g_autoptr(GString) text = g_string_new(NULL);

        if (!*name || name[0] == '-' || g_ascii_isdigit(name[0]))
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX, "expected a syscall name at \"%s\"",
                            c->p);
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
                return fail(error, c, EMU_POLICY_ERROR_UNKNOWN_SYSCALL, "unknown syscall \"%s\"",
                            name);

        EmuPolicyRule *r = g_new0(EmuPolicyRule, 1);
        g_ptr_array_add(ld->policy->rules, r); /* owned by the policy from here on */
        r->syscall = g_strdup(name);
        r->nr = nr;
        r->deny_errno = deny_errno;
        r->origin = g_strdup_printf("%s:%u", c->file, c->line);
        skip_ws(c);
        if (*c->p == ':') {
                c->p++;
                const char *start = c->p;
                unsigned expansion = 1;
                do {
                        if (r->n_conds == G_N_ELEMENTS(r->conds))
                                return fail(error, c, EMU_POLICY_ERROR_LIMIT,
                                            "more than 6 conditions");
                        EmuPolicyCond *cond = &r->conds[r->n_conds++];
                        if (!parse_cond(c, cond, error))
                                return false;
                        for (unsigned i = 0; i + 1 < r->n_conds; i++)
                                if (r->conds[i].arg == cond->arg)
                                        return fail(error, c, EMU_POLICY_ERROR_SYNTAX,
                                                    "arg%u is tested twice; use \"in {…}\"",
                                                    cond->arg);
                        expansion *= cond->n_values;
                        if (expansion > MAX_EXPANSION)
                                return fail(error, c, EMU_POLICY_ERROR_LIMIT,
                                            "conditions expand to more than %d rules",
                                            MAX_EXPANSION);
                } while (accept(c, ","));
                g_autofree char *raw = g_strndup(start, (gsize)(c->p - start));
                g_auto(GStrv) parts = g_strsplit_set(g_strstrip(raw), " \t", -1);
                for (char **q = parts; *q; q++)
                        if (**q)
                                g_string_append_printf(text, "%s%s", text->len ? " " : "", *q);
        }
        skip_ws(c);
        if (*c->p)
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX, "unexpected \"%s\"", c->p);
        r->text = g_string_free(g_steal_pointer(&text), FALSE);
        if (ld->policy->rules->len > MAX_RULES)
                return fail(error, c, EMU_POLICY_ERROR_LIMIT, "more than %d rules", MAX_RULES);
        return true;
}

static bool parse_default(Loader *ld, Cursor *c, bool top, GError **error)
{
        g_autofree char *w = take_word(c);
        EmuPolicy *p = ld->policy;

        if (!top)
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX,
                            "@default belongs in the top-level policy, not an included one");
        if (strcmp(w, "kill") == 0) {
                p->default_action = EMU_POLICY_DEFAULT_KILL;
        } else if (strcmp(w, "log") == 0) {
                p->default_action = EMU_POLICY_DEFAULT_LOG;
        } else if (strcmp(w, "errno") == 0 && accept(c, ":")) {
                g_autofree char *e = take_word(c);
                int found = parse_errno(e);
                if (found < 0)
                        return fail(error, c, EMU_POLICY_ERROR_SYNTAX, "unknown errno \"%s\"", e);
                p->default_action = EMU_POLICY_DEFAULT_ERRNO;
                p->default_errno = found;
        } else {
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX,
                            "@default takes kill, log or errno:NAME, not \"%s\"", w);
        }
        skip_ws(c);
        if (*c->p)
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX, "unexpected \"%s\"", c->p);
        return true;
}

static bool load_text(Loader *ld, const char *text, size_t len, const char *file, bool top,
                      GError **error);

/* "@errno ENOSYS io_uring_setup userfaultfd": those calls fail with that errno, never notify. */
static bool parse_errno_rules(Loader *ld, Cursor *c, GError **error)
{
        g_autofree char *e = take_word(c);
        int value = parse_errno(e);
        unsigned n = 0;

        if (value < 0)
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX, "unknown errno \"%s\"", e);
        for (;;) {
                skip_ws(c);
                if (!*c->p)
                        break;
                const char *start = c->p;
                while (*c->p && *c->p != ' ' && *c->p != '\t')
                        c->p++;
                g_autofree char *one = g_strndup(start, (gsize)(c->p - start));
                Cursor sub = { .file = c->file, .line = c->line, .p = one };
                if (!parse_rule(ld, &sub, value, error))
                        return false;
                n++;
        }
        if (!n)
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX, "@errno %s names no syscall", e);
        return true;
}

static bool load_include(Loader *ld, Cursor *c, GError **error)
{
        g_autofree char *name = NULL;
        skip_ws(c);
        const char *start = c->p;
        while (*c->p && *c->p != ' ' && *c->p != '\t')
                c->p++;
        name = g_strndup(start, (gsize)(c->p - start));
        skip_ws(c);
        if (!*name || *c->p)
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX, "@include takes one policy name");
        if (!valid_name(name))
                return fail(error, c, EMU_POLICY_ERROR_SYNTAX, "invalid policy name \"%s\"", name);
        for (guint i = 0; i < ld->stack->len; i++)
                if (strcmp(ld->stack->pdata[i], name) == 0) {
                        g_autoptr(GString) chain = g_string_new(NULL);
                        for (guint j = i; j < ld->stack->len; j++)
                                g_string_append_printf(chain, "%s -> ",
                                                       (char *)ld->stack->pdata[j]);
                        g_string_append(chain, name);
                        return fail(error, c, EMU_POLICY_ERROR_INCLUDE_LOOP, "include loop: %s",
                                    chain->str);
                }
        if (g_hash_table_contains(ld->done, name))
                return true;
        if (ld->stack->len >= MAX_DEPTH)
                return fail(error, c, EMU_POLICY_ERROR_LIMIT, "includes nested more than %d deep",
                            MAX_DEPTH);
        g_autoptr(GError) err = NULL;
        g_autofree char *path = emu_policy_find(name, ld->dirs, &err);
        if (!path)
                return fail(error, c, EMU_POLICY_ERROR_NOT_FOUND, "@include %s: %s", name,
                            err->message);
        g_autofree char *data = NULL;
        gsize len = 0;
        if (!g_file_get_contents(path, &data, &len, &err))
                return fail(error, c, EMU_POLICY_ERROR_IO, "@include %s: %s", name, err->message);
        g_ptr_array_add(ld->stack, g_strdup(name));
        bool ok = load_text(ld, data, len, path, false, error);
        g_ptr_array_remove_index(ld->stack, ld->stack->len - 1);
        if (ok)
                g_hash_table_add(ld->done, g_steal_pointer(&name));
        return ok;
}

static bool load_text(Loader *ld, const char *text, size_t len, const char *file, bool top,
                      GError **error)
{
        Cursor c = { .file = file, .line = 0 };

        g_ptr_array_add(ld->policy->files, g_strdup(file));
        if (len > MAX_FILE_SIZE || memchr(text, '\0', len)) {
                c.line = 1;
                return fail(error, &c, len > MAX_FILE_SIZE ? EMU_POLICY_ERROR_LIMIT
                                                           : EMU_POLICY_ERROR_SYNTAX,
                            len > MAX_FILE_SIZE ? "file larger than 1 MiB" : "NUL byte in file");
        }
        const char *end = text + len;
        for (const char *p = text; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *eol = nl ? nl : end;
                c.line++;
                if (eol - p > MAX_LINE)
                        return fail(error, &c, EMU_POLICY_ERROR_LIMIT, "line longer than %d bytes",
                                    MAX_LINE);
                g_autofree char *line = g_strndup(p, (gsize)(eol - p));
                p = nl ? nl + 1 : end;
                char *hash = strchr(line, '#');
                if (hash)
                        *hash = '\0';
                g_strchomp(line);
                c.p = line;
                skip_ws(&c);
                if (!*c.p)
                        continue;
                bool ok;
                if (*c.p == '@') {
                        c.p++;
                        g_autofree char *directive = take_word(&c);
                        if (strcmp(directive, "include") == 0)
                                ok = load_include(ld, &c, error);
                        else if (strcmp(directive, "default") == 0)
                                ok = parse_default(ld, &c, top, error);
                        else if (strcmp(directive, "errno") == 0)
                                ok = parse_errno_rules(ld, &c, error);
                        else
                                ok = fail(error, &c, EMU_POLICY_ERROR_SYNTAX,
                                          "unknown directive \"@%s\"", directive);
                } else {
                        ok = parse_rule(ld, &c, 0, error);
                }
                if (!ok)
                        return false;
        }
        return true;
}

static EmuPolicy *load(const char *name, const char *text, size_t len, const char *file,
                       const char *const *dirs, GError **error)
{
        g_autoptr(EmuPolicy) p = g_new0(EmuPolicy, 1);
        g_autoptr(GPtrArray) stack = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GHashTable) done = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        Loader ld = { .policy = p, .dirs = dirs, .stack = stack, .done = done };

        p->name = g_strdup(name);
        p->path = g_strdup(file);
        p->default_action = EMU_POLICY_DEFAULT_KILL;
        p->rules = g_ptr_array_new_with_free_func((GDestroyNotify)rule_free);
        p->files = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(stack, g_strdup(name));
        if (!load_text(&ld, text, len, file, true, error))
                return NULL;
        return g_steal_pointer(&p);
}

EmuPolicy *emu_policy_load(const char *name, const char *const *dirs, GError **error)
{
        g_autofree char *path = emu_policy_find(name, dirs, error);
        if (!path)
                return NULL;
        g_autofree char *data = NULL;
        gsize len = 0;
        if (!g_file_get_contents(path, &data, &len, error))
                return NULL;
        return load(name, data, len, path, dirs, error);
}

EmuPolicy *emu_policy_load_data(const char *text, size_t len, const char *origin,
                                const char *const *dirs, GError **error)
{
        return load(origin, text, len, origin, dirs, error);
}

bool emu_policy_allows_always(const EmuPolicy *p, const char *syscall)
{
        for (guint i = 0; i < p->rules->len; i++) {
                const EmuPolicyRule *r = p->rules->pdata[i];
                if (r->n_conds == 0 && !r->deny_errno && strcmp(r->syscall, syscall) == 0)
                        return true;
        }
        return false;
}

static int cmp_str(gconstpointer a, gconstpointer b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

char *emu_policy_dump_learned(const EmuPolicy *base, GHashTable *learned, const char *header)
{
        GString *s = g_string_new(NULL);
        g_autoptr(GPtrArray) names = g_ptr_array_new();
        GHashTableIter it;
        gpointer key;

        if (header) {
                g_auto(GStrv) lines = g_strsplit(header, "\n", -1);
                for (char **l = lines; *l; l++)
                        g_string_append_printf(s, "# %s\n", *l);
        }
        switch (base->default_action) {
        case EMU_POLICY_DEFAULT_KILL:
                g_string_append(s, "@default kill\n");
                break;
        case EMU_POLICY_DEFAULT_LOG:
                g_string_append(s, "@default log\n");
                break;
        case EMU_POLICY_DEFAULT_ERRNO:
                g_string_append_printf(s, "@default errno:%d\n", base->default_errno);
                break;
        }
        g_string_append_printf(s, "\n# from %s\n", base->path);
        for (guint i = 0; i < base->rules->len; i++) {
                const EmuPolicyRule *r = base->rules->pdata[i];
                bool widened = r->n_conds && learned && g_hash_table_contains(learned, r->syscall);
                if (widened)
                        continue; /* written once, unconditionally, below */
                if (r->deny_errno && learned && g_hash_table_contains(learned, r->syscall))
                        continue; /* the workload needs it after all; learned below */
                if (r->deny_errno)
                        g_string_append_printf(s, "@errno %d %s\n", r->deny_errno, r->syscall);
                else if (r->n_conds)
                        g_string_append_printf(s, "%s: %s\n", r->syscall, r->text);
                else
                        g_string_append_printf(s, "%s\n", r->syscall);
        }
        if (learned) {
                g_hash_table_iter_init(&it, learned);
                while (g_hash_table_iter_next(&it, &key, NULL))
                        if (!emu_policy_allows_always(base, key))
                                g_ptr_array_add(names, key);
        }
        g_ptr_array_sort(names, cmp_str);
        if (names->len)
                g_string_append(s, "\n# learned\n");
        for (guint i = 0; i < names->len; i++) {
                bool had_cond = false;
                for (guint j = 0; j < base->rules->len; j++)
                        had_cond |= strcmp(((EmuPolicyRule *)base->rules->pdata[j])->syscall,
                                           names->pdata[i]) == 0;
                g_string_append_printf(s, "%s%s\n", (char *)names->pdata[i],
                                       had_cond ? "  # widened: used outside the conditions of base"
                                                : "");
        }
        return g_string_free(s, FALSE);
}
