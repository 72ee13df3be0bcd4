/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "manager.h"

/*
 * The daemon side of confinement: the sandbox for each launch of an
 * emulator (from its kind's profile and its options), and the seccomp
 * supervisor that names what the filter stopped.
 */

/* Load the kind's policy for a new emulator; NULL with error (file and line) when bad. */
EmuPolicy *confine_load_policy(Manager *m, const EmuKind *kind, GError **error);

/*
 * The sandbox for the next launch of e; NULL with *error unset when the
 * sandbox is switched off (sandbox=off in emud.conf, or steps "none").
 */
EmuSandbox *confine_prepare(Emulator *e, GError **error);

/* Watch the launched process's seccomp listener (taken over). */
void confine_watch(Emulator *e, int listener);

/* The process is gone: stop watching, remove its cgroup leaf. */
void confine_release(Emulator *e);

/* Learn mode: the policy that would have allowed what the emulator did. */
char *confine_dump_policy(Emulator *e, GError **error);
