/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

/*
 * Errors at the edges (D-Bus, QMP, CLI, config) are GErrors in this domain.
 * Each code has a D-Bus error name org.emud.Error.<Name>, so clients can
 * tell a duplicate id from a missing image without parsing text.
 */
#define EMU_ERROR (emu_error_quark())
GQuark emu_error_quark(void);

typedef enum {
        EMU_ERROR_FAILED,          /* Failed */
        EMU_ERROR_INVALID_ID,      /* InvalidId */
        EMU_ERROR_EXISTS,          /* Exists */
        EMU_ERROR_UNKNOWN_VM,      /* UnknownVM */
        EMU_ERROR_UNKNOWN_KIND,    /* UnknownKind */
        EMU_ERROR_UNKNOWN_EMULATOR,/* UnknownEmulator */
        EMU_ERROR_MISSING_OPTION,  /* MissingOption */
        EMU_ERROR_UNKNOWN_OPTION,  /* UnknownOption */
        EMU_ERROR_INVALID_OPTION,  /* InvalidOption */
        EMU_ERROR_BAD_PATH,        /* BadPath */
        EMU_ERROR_QMP_UNAVAILABLE, /* QmpUnavailable */
        EMU_ERROR_NO_FREE_SLOT,    /* NoFreeSlot */
        EMU_ERROR_SPAWN_FAILED,    /* SpawnFailed */
        EMU_ERROR_HOTPLUG_FAILED,  /* HotplugFailed */
        EMU_ERROR_TIMEOUT,         /* Timeout */
        EMU_ERROR_BUSY,            /* Busy */
        EMU_ERROR_VM_LOST,         /* VMLost */
        EMU_ERROR_BAD_DESCRIPTOR,  /* BadDescriptor */
        EMU_ERROR_SHUTTING_DOWN,   /* ShuttingDown */
        _EMU_ERROR_MAX,
} EmuErrorCode;

/* "org.emud.Error.Exists" and so on; never NULL. */
const char *emu_error_dbus_name(int code);

/* The inverse, for the CLI; EMU_ERROR_FAILED when unknown. */
int emu_error_from_dbus_name(const char *name);
