/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "config.h"
#include "descriptor.h"
#include "emu-log.h"
#include "policy.h"
#include "sandbox.h"

/*
 * The daemon side of confinement: the seccomp policy of a kind, and the
 * sandbox for each launch of an emulator (from its kind's profile and its
 * options). The same check runs at start-up for every kind and at each
 * spawn, so a kind that passed the first cannot fail the second.
 */

/*
 * The kind's policy, or NULL with error unset when the kind runs without a
 * filter; NULL with error (file and line) when its steps or policy are bad.
 */
EmuPolicy *confine_load_policy(const EmudConfig *cfg, const EmuKind *kind, GError **error);

/*
 * The sandbox for the next launch; NULL with *error unset when the sandbox
 * is switched off (sandbox=off in emud.conf, or steps "none"). leaf names
 * its cgroup leaf; ctx is whom the notes are logged for.
 */
/*
 * A kind's sandbox steps and seccomp policy are configuration: check those of
 * every kind at start-up and reload, with the same function every spawn uses,
 * so that a typo shows there rather than failing every Spawn.
 */
bool confine_check_kinds(const EmudConfig *cfg, GHashTable *kinds, GError **error);

EmuSandbox *confine_prepare(const EmudConfig *cfg, const EmuKind *kind, const EmuPlan *plan,
                            EmuPolicy *policy, EmuSeccompMode mode, const char *leaf,
                            const EmuLogCtx *ctx, GError **error);
