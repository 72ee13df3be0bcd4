/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* g_autoptr() support for the C libraries emud links against. */

#include <glib.h>
#include <seccomp.h>
#include <systemd/sd-bus.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus, sd_bus_flush_close_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_slot, sd_bus_slot_unref)

static inline void emu_seccomp_release(scmp_filter_ctx ctx)
{
        if (ctx)
                seccomp_release(ctx);
}
#define emu_auto_seccomp __attribute__((cleanup(emu_seccomp_releasep))) scmp_filter_ctx
static inline void emu_seccomp_releasep(scmp_filter_ctx *ctx)
{
        emu_seccomp_release(*ctx);
}

static inline void emu_bus_error_free(sd_bus_error *e)
{
        sd_bus_error_free(e);
}
/* An sd_bus_error freed at the end of its scope; initialise with SD_BUS_ERROR_NULL. */
#define emu_auto_bus_error __attribute__((cleanup(emu_bus_error_free))) sd_bus_error
