/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

/*
 * Logging. Lines about an emulator carry journald fields EMUD_VM=,
 * EMUD_EMULATOR=, EMUD_KIND= and EMUD_PID=, and on a terminal they are
 * prefixed with the emulator (or VM) name so they can be grepped.
 */
typedef struct {
        const char *vm;
        const char *emulator;
        const char *kind;
        pid_t pid;
} EmuLogCtx;

/* Install the writer: journald when stderr is the journal, plain lines otherwise. */
void emu_log_init(bool debug);

void emu_log_ctx(GLogLevelFlags level, const EmuLogCtx *ctx, const char *fmt, ...)
        G_GNUC_PRINTF(3, 4);

#define emu_info(ctx, ...) emu_log_ctx(G_LOG_LEVEL_INFO, ctx, __VA_ARGS__)
#define emu_warn(ctx, ...) emu_log_ctx(G_LOG_LEVEL_WARNING, ctx, __VA_ARGS__)
#define emu_debug(ctx, ...) emu_log_ctx(G_LOG_LEVEL_DEBUG, ctx, __VA_ARGS__)
