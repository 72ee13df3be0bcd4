/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emu-log: structured logging on top of GLib's structured log API.
 *
 * GLib's default writer hides informational messages unless G_MESSAGES_DEBUG
 * is set, which is wrong for a daemon whose log is its audit trail, so emud
 * installs its own writer: journald when stderr is connected to it, one
 * "level: message" line on stderr otherwise.
 */
#include <stdio.h>

#include "emu-log.h"

static bool log_debug;

static const char *level_priority(GLogLevelFlags level)
{
        if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
                return "3";
        if (level & G_LOG_LEVEL_WARNING)
                return "4";
        if (level & G_LOG_LEVEL_MESSAGE)
                return "5";
        if (level & G_LOG_LEVEL_INFO)
                return "6";
        return "7";
}

static const char *level_name(GLogLevelFlags level)
{
        if (level & G_LOG_LEVEL_ERROR)
                return "error";
        if (level & G_LOG_LEVEL_CRITICAL)
                return "critical";
        if (level & G_LOG_LEVEL_WARNING)
                return "warning";
        if (level & G_LOG_LEVEL_MESSAGE)
                return "notice";
        if (level & G_LOG_LEVEL_INFO)
                return "info";
        return "debug";
}

static GLogWriterOutput writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                               gpointer user_data)
{
        if ((level & G_LOG_LEVEL_DEBUG) && !log_debug)
                return G_LOG_WRITER_HANDLED;
        if (g_log_writer_is_journald(fileno(stderr)) &&
            g_log_writer_journald(level, fields, n_fields, user_data) == G_LOG_WRITER_HANDLED)
                return G_LOG_WRITER_HANDLED;

        const char *message = NULL;
        for (gsize i = 0; i < n_fields; i++)
                if (g_str_equal(fields[i].key, "MESSAGE"))
                        message = fields[i].value;
        fprintf(stderr, "%s: %s\n", level_name(level), message ? message : "(no message)");
        fflush(stderr);
        return G_LOG_WRITER_HANDLED;
}

void emu_log_init(bool debug)
{
        log_debug = debug;
        g_log_set_writer_func(writer, NULL, NULL);
}

void emu_log_ctx(GLogLevelFlags level, const EmuLogCtx *ctx, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *text = g_strdup_vprintf(fmt, ap);
        va_end(ap);

        g_autofree char *message = NULL;
        if (ctx && ctx->emulator)
                message = g_strdup_printf("%s: %s", ctx->emulator, text);
        else if (ctx && ctx->vm)
                message = g_strdup_printf("vm %s: %s", ctx->vm, text);
        else
                message = g_steal_pointer(&text);

        g_autofree char *pid = ctx && ctx->pid > 0 ? g_strdup_printf("%d", (int)ctx->pid) : NULL;
        GLogField fields[8];
        gsize n = 0;
        fields[n++] = (GLogField){ "PRIORITY", level_priority(level), -1 };
        fields[n++] = (GLogField){ "MESSAGE", message, -1 };
        fields[n++] = (GLogField){ "GLIB_DOMAIN", "emud", -1 };
        if (ctx && ctx->vm)
                fields[n++] = (GLogField){ "EMUD_VM", ctx->vm, -1 };
        if (ctx && ctx->emulator)
                fields[n++] = (GLogField){ "EMUD_EMULATOR", ctx->emulator, -1 };
        if (ctx && ctx->kind)
                fields[n++] = (GLogField){ "EMUD_KIND", ctx->kind, -1 };
        if (pid)
                fields[n++] = (GLogField){ "EMUD_PID", pid, -1 };
        g_log_structured_array(level, fields, n);
}
