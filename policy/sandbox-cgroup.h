/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The cgroup under which emulators get their leaves, prepared once at emud's
 * start-up. The per-launch half (one leaf per emulator) is in sandbox.h.
 */

/* emud's own sub-cgroup when it has to leave its cgroup to its emulators. */
#define EMU_CGROUP_SUPERVISOR "supervisor"

/*
 * Make the cgroup for emulator leaves able to take memory.max and pids.max.
 * Call it once at start-up, before the first emulator is spawned and before
 * READY=1, and pass *ret_parent on as EmuSandboxConfig.cgroup_parent.
 *
 * @configured: emud.conf's cgroup-parent=, or NULL for emud's own cgroup.
 *
 * cgroup v2 lets a cgroup with processes in it hand no controller down, and
 * systemd 252's Delegate=yes (no DelegateSubgroup= before 254) puts emud
 * straight into the delegated cgroup. So when the parent is emud's own
 * cgroup, emud moves itself, every thread, into <own>/supervisor, enables
 * +memory +pids in <own>/cgroup.subtree_control, and the leaves
 * (<own>/emud-<vm>.<id>.<n>) go beside the supervisor group. Under systemd
 * this is done only in a cgroup delegated to emud (trusted.delegate or
 * user.delegate set to 1), since systemd rewrites the subtree_control of
 * cgroups it owns. A configured parent elsewhere is returned unchecked (as
 * before: each launch notes what it could not set).
 *
 * Returns 0 with *ret_parent set (g_free() it) and *ret_message NULL, or
 * saying what was done, for one info line. Returns a negative errno when the
 * limits cannot be had: *ret_message (g_free() it) names the file, the error
 * and what the operator can do; *ret_parent is untouched and so is the cgroup
 * tree (a half-done move is undone), so leaves go where they always did,
 * without limits. It is a warning, not a reason to stop.
 */
int emu_cgroup_prepare_parent(const char *configured, char **ret_parent, char **ret_message);
