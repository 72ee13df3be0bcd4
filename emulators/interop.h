/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

/*
 * QEMU's vhost-user backend interop descriptors (docs/interop/vhost-user.json):
 * JSON files in /usr/share/qemu/vhost-user, /etc/qemu/vhost-user and
 * $XDG_CONFIG_HOME/qemu/vhost-user that name a backend's type and binary.
 * A file in a later directory overrides one of the same name in an earlier
 * directory, and an empty file masks the name. Each installed backend is asked
 * for its features with BINARY --print-capabilities.
 */

typedef struct {
        char *file;        /* the file name, e.g. 50-qemu-virtiofsd.json */
        char *origin;      /* full path of the file that won */
        char *type;        /* NULL if the file was malformed */
        char *binary;      /* NULL if malformed */
        char *description; /* may be NULL */
        char **features;   /* from --print-capabilities; NULL-terminated, never NULL */
        char *unavailable; /* NULL when usable, else one line saying why */
} EmuInteropBackend;

void emu_interop_backend_free(EmuInteropBackend *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuInteropBackend, emu_interop_backend_free)

/* The probe timeout emu_interop_scan() uses when it is given 0. */
#define EMU_INTEROP_PROBE_TIMEOUT_MS 2000

/*
 * The three standard directories (the XDG one from the environment; left out when neither
 * XDG_CONFIG_HOME nor HOME is set), NULL-terminated; free with g_strfreev.
 */
char **emu_interop_default_dirs(void);

/*
 * Scan dirs (NULL-terminated, earlier ones overridden by later); missing dirs are fine.
 * Returns EmuInteropBackend* in file-name order, masked names left out. probe_timeout_ms
 * bounds each --print-capabilities run (0 means EMU_INTEROP_PROBE_TIMEOUT_MS); a run blocks
 * the calling thread and needs no main loop. Never fails: problems are per-backend
 * `unavailable`.
 */
GPtrArray *emu_interop_scan(const char *const *dirs, guint probe_timeout_ms);

/*
 * Run argv (no shell, stdin /dev/null, stderr discarded, no inherited fds),
 * appending its standard output to output; the child is always reaped, killed
 * at the deadline if need be. NULL if it exited with status 0, else one line
 * saying what went wrong.
 */
char *emu_run_bounded(const char *const *argv, guint timeout_ms, GString *output);
