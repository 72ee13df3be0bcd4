/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Seccomp policies as text (policy/FORMAT.md): one syscall a line, optional
 * argument conditions, @include, @default. This module finds, reads and
 * checks them; policy-compile turns the result into BPF.
 */

#define EMU_POLICY_ERROR (emu_policy_error_quark())
GQuark emu_policy_error_quark(void);

typedef enum {
        EMU_POLICY_ERROR_SYNTAX,
        EMU_POLICY_ERROR_UNKNOWN_SYSCALL,
        EMU_POLICY_ERROR_INCLUDE_LOOP,
        EMU_POLICY_ERROR_NOT_FOUND,
        EMU_POLICY_ERROR_IO,
        EMU_POLICY_ERROR_LIMIT,
} EmuPolicyErrorCode;

/* What happens to a syscall no rule allows. */
typedef enum {
        EMU_POLICY_DEFAULT_KILL,
        EMU_POLICY_DEFAULT_ERRNO,
        EMU_POLICY_DEFAULT_LOG,
} EmuPolicyDefault;

typedef enum {
        EMU_CMP_EQ,
        EMU_CMP_NE,
        EMU_CMP_LT,
        EMU_CMP_LE,
        EMU_CMP_GT,
        EMU_CMP_GE,
        EMU_CMP_MASKED_EQ, /* (arg & mask) == value */
} EmuCmpOp;

#define EMU_POLICY_MAX_SET 32 /* values in one "in {…}" */

typedef struct {
        unsigned arg;         /* 0..5 */
        EmuCmpOp op;
        uint64_t mask;        /* EMU_CMP_MASKED_EQ only */
        uint64_t values[EMU_POLICY_MAX_SET];
        unsigned n_values;    /* more than one: "in {…}", any of them matches */
} EmuPolicyCond;

/* One line: the syscall is allowed when every condition holds. */
typedef struct {
        char *syscall;
        int nr;               /* native architecture */
        EmuPolicyCond conds[6];
        unsigned n_conds;
        int deny_errno;       /* 0: the rule allows; else "@errno": the call fails with this */
        char *origin;         /* file:line, for messages and dumps */
        char *text;           /* the conditions as written, normalised spacing */
} EmuPolicyRule;

typedef struct {
        char *name;
        char *path;                 /* file of the top-level policy; "<data>" when from memory */
        EmuPolicyDefault default_action;
        int default_errno;          /* EMU_POLICY_DEFAULT_ERRNO */
        GPtrArray *rules;           /* EmuPolicyRule*, in file order, includes expanded */
        GPtrArray *files;           /* every file read, top-level first */
} EmuPolicy;

/*
 * The file for policy NAME: the first dirs[i]/NAME.policy that exists, so
 * passing { "/etc/emud/policy", "<datadir>/emud/policy", NULL } lets an admin
 * copy override the shipped one. NAME is [A-Za-z0-9_.-]+ and starts with no dot.
 */
char *emu_policy_find(const char *name, const char *const *dirs, GError **error);

/* Find, read and check a policy; every error names file and line. */
EmuPolicy *emu_policy_load(const char *name, const char *const *dirs, GError **error);

/* The same from text, for tests and fuzzing; @include still searches dirs (may be NULL). */
EmuPolicy *emu_policy_load_data(const char *text, size_t len, const char *origin,
                                const char *const *dirs, GError **error);

void emu_policy_free(EmuPolicy *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuPolicy, emu_policy_free)

/* True when some rule allows the syscall whatever its arguments. */
bool emu_policy_allows_always(const EmuPolicy *p, const char *syscall);

/*
 * A policy that allows what base allows plus every syscall in learned (a set
 * of names), with the default of base. Rules of base are kept as written;
 * a learned syscall that base only allowed under conditions is widened to
 * the whole syscall, with a comment saying so.
 */
char *emu_policy_dump_learned(const EmuPolicy *base, GHashTable *learned, const char *header);
