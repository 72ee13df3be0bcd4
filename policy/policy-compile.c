/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * policy-compile: EmuPolicy → libseccomp filter → BPF program.
 *
 * Compiling happens in the parent, before fork, so a bad policy fails the
 * spawn before any process exists, and the child only has to hand a
 * finished program to the kernel. libseccomp 2.5 can only export BPF to an
 * fd, so the program travels through a memfd and is read back into memory.
 *
 * Every spawn of a kind compiles the same policy again, and libseccomp takes
 * about a third of a millisecond for it, so finished programs are kept,
 * keyed on a digest of everything that goes into the filter (the rules as
 * parsed, the default, the flags): an edited policy file digests differently
 * and is compiled afresh, without any question of file times.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu-util.h"
#include "policy-compile.h"

void emu_bpf_free(EmuBpf *bpf)
{
        if (!bpf)
                return;
        g_free(bpf->prog.filter);
        g_free(bpf);
}

static enum scmp_compare cmp_op(EmuCmpOp op)
{
        switch (op) {
        case EMU_CMP_EQ:
                return SCMP_CMP_EQ;
        case EMU_CMP_NE:
                return SCMP_CMP_NE;
        case EMU_CMP_LT:
                return SCMP_CMP_LT;
        case EMU_CMP_LE:
                return SCMP_CMP_LE;
        case EMU_CMP_GT:
                return SCMP_CMP_GT;
        case EMU_CMP_GE:
                return SCMP_CMP_GE;
        case EMU_CMP_MASKED_EQ:
                return SCMP_CMP_MASKED_EQ;
        }
        return SCMP_CMP_EQ;
}

/* One seccomp rule per combination of set members: "in {…}" is an OR. */
static int add_rule(scmp_filter_ctx ctx, const EmuPolicyRule *r)
{
        unsigned idx[6] = { 0 };

        if (r->nr < 0)
                return 0; /* not a syscall of this architecture; nothing to allow */
        for (;;) {
                struct scmp_arg_cmp cmps[6];
                for (unsigned i = 0; i < r->n_conds; i++) {
                        const EmuPolicyCond *c = &r->conds[i];
                        cmps[i] = (struct scmp_arg_cmp){
                                .arg = c->arg,
                                .op = cmp_op(c->op),
                                .datum_a = c->op == EMU_CMP_MASKED_EQ ? c->mask
                                                                      : c->values[idx[i]],
                                .datum_b = c->op == EMU_CMP_MASKED_EQ ? c->values[idx[i]] : 0,
                        };
                }
                uint32_t action = r->deny_errno ? SCMP_ACT_ERRNO((uint32_t)r->deny_errno)
                                                : SCMP_ACT_ALLOW;
                int r2 = seccomp_rule_add_array(ctx, action, r->nr, r->n_conds, cmps);
                /* An unconditional rule for the same syscall already covers this one. */
                if (r2 < 0 && r2 != -EEXIST)
                        return r2;
                unsigned i = 0;
                for (; i < r->n_conds; i++) {
                        if (++idx[i] < r->conds[i].n_values)
                                break;
                        idx[i] = 0;
                }
                if (i == r->n_conds)
                        return 0;
        }
}

int emu_policy_build(const EmuPolicy *p, unsigned flags, scmp_filter_ctx *ret_ctx)
{
        uint32_t def;

        if (flags & EMU_COMPILE_NOTIFY)
                def = SCMP_ACT_NOTIFY;
        else if (p->default_action == EMU_POLICY_DEFAULT_ERRNO)
                def = SCMP_ACT_ERRNO((uint32_t)p->default_errno);
        else if (p->default_action == EMU_POLICY_DEFAULT_LOG)
                def = SCMP_ACT_LOG;
        else
                def = SCMP_ACT_KILL_PROCESS;

        emu_auto_seccomp ctx = seccomp_init(def);
        if (!ctx)
                return -ENOMEM;
        int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        /* The launcher sets no_new_privs itself, as a step of its own. */
        if (r >= 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (r >= 0 && !(flags & EMU_COMPILE_NO_OPTIMIZE))
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        if (r < 0)
                return r;

        /*
         * Every policy has these: a seccomp filter can see no difference
         * between the launcher's close of its handoff socket and the emulator's
         * own, and a process that may not exit cannot be stopped cleanly.
         */
        static const char *const always[] = { "close", "exit", "exit_group" };
        for (size_t i = 0; i < G_N_ELEMENTS(always); i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, seccomp_syscall_resolve_name(always[i]),
                                     0);
                if (r < 0)
                        return r;
        }
        for (guint i = 0; i < p->rules->len; i++) {
                const EmuPolicyRule *rule = p->rules->pdata[i];
                /* libseccomp rejects conditional rules next to an unconditional one. */
                if ((rule->n_conds || rule->deny_errno) &&
                    emu_policy_allows_always(p, rule->syscall))
                        continue;
                r = add_rule(ctx, rule);
                if (r < 0)
                        return r;
        }
        *ret_ctx = g_steal_pointer(&ctx);
        return 0;
}

/* Compiled programs by digest; a handful of kinds at most, so no eviction order. */
#define CACHE_MAX 32
G_LOCK_DEFINE_STATIC(cache);
static GHashTable *cache; /* hex digest → EmuBpf */

static EmuBpf *bpf_dup(const EmuBpf *b)
{
        EmuBpf *copy = g_new0(EmuBpf, 1);
        copy->prog.len = b->prog.len;
        copy->prog.filter = g_memdup2(b->prog.filter, b->prog.len * sizeof(struct sock_filter));
        return copy;
}

/* Everything emu_policy_build() reads, in a fixed layout; origins and comments do not count. */
static char *digest(const EmuPolicy *p, unsigned flags)
{
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        guint64 head[] = { flags, p->default_action, (guint64)p->default_errno, p->rules->len };
        g_checksum_update(sum, (const guchar *)head, sizeof(head));
        for (guint i = 0; i < p->rules->len; i++) {
                const EmuPolicyRule *r = p->rules->pdata[i];
                guint64 rule[] = { (guint64)r->nr, r->n_conds, (guint64)r->deny_errno };
                g_checksum_update(sum, (const guchar *)r->syscall, strlen(r->syscall) + 1);
                g_checksum_update(sum, (const guchar *)rule, sizeof(rule));
                for (unsigned c = 0; c < r->n_conds; c++) {
                        const EmuPolicyCond *cond = &r->conds[c];
                        guint64 h[] = { cond->arg, cond->op, cond->mask, cond->n_values };
                        g_checksum_update(sum, (const guchar *)h, sizeof(h));
                        g_checksum_update(sum, (const guchar *)cond->values,
                                          cond->n_values * sizeof(cond->values[0]));
                }
        }
        return g_strdup(g_checksum_get_string(sum));
}

static int compile_uncached(const EmuPolicy *p, unsigned flags, EmuBpf **ret_bpf)
{
        emu_auto_seccomp ctx = NULL;
        struct stat st;

        int r = emu_policy_build(p, flags, &ctx);
        if (r < 0)
                return r;
        emu_autofd memfd = memfd_create("emud-bpf", MFD_CLOEXEC);
        if (memfd < 0)
                return -errno;
        r = seccomp_export_bpf(ctx, memfd);
        if (r < 0)
                return r;
        if (fstat(memfd, &st) < 0)
                return -errno;
        if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
            st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return -E2BIG;
        g_autoptr(EmuBpf) bpf = g_new0(EmuBpf, 1);
        bpf->prog.len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
        bpf->prog.filter = g_malloc((size_t)st.st_size);
        if (pread(memfd, bpf->prog.filter, (size_t)st.st_size, 0) != st.st_size)
                return -EIO;
        *ret_bpf = g_steal_pointer(&bpf);
        return 0;
}

int emu_policy_compile(const EmuPolicy *p, unsigned flags, EmuBpf **ret_bpf)
{
        g_autofree char *key = digest(p, flags);
        G_LOCK(cache);
        const EmuBpf *hit = cache ? g_hash_table_lookup(cache, key) : NULL;
        EmuBpf *copy = hit ? bpf_dup(hit) : NULL;
        G_UNLOCK(cache);
        if (copy) {
                *ret_bpf = copy;
                return 0;
        }

        g_autoptr(EmuBpf) bpf = NULL;
        int r = compile_uncached(p, flags, &bpf);
        if (r < 0)
                return r;
        G_LOCK(cache);
        if (!cache)
                cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify)emu_bpf_free);
        if (g_hash_table_size(cache) >= CACHE_MAX)
                g_hash_table_remove_all(cache);
        g_hash_table_replace(cache, g_steal_pointer(&key), bpf_dup(bpf));
        G_UNLOCK(cache);
        *ret_bpf = g_steal_pointer(&bpf);
        return 0;
}
