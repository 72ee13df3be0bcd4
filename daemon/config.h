/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* emud's settings: built-in defaults, then emud.conf, then the command line. */
typedef struct {
        char *runtime_dir;
        char *kinds_dir;
        guint qmp_timeout_ms;     /* greeting and each QMP command to QEMU */
        guint ready_timeout_ms;   /* emulator exec → QMP greeting */
        guint unplug_timeout_ms;  /* device_del → DEVICE_DELETED */
        guint stop_grace_ms;      /* SIGTERM → SIGKILL */
} EmudConfig;

void emud_config_init(EmudConfig *c);
void emud_config_deinit(EmudConfig *c);

/*
 * Load a GKeyFile. A missing file is fine when it is the default path
 * (required == false); a bad value or unknown key is always an error.
 */
bool emud_config_load(EmudConfig *c, const char *path, bool required, GError **error);
