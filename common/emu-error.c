/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emu-error: the error domain of emud's edges and its D-Bus names.
 */
#include <string.h>

#include "emu-error.h"

G_DEFINE_QUARK(emu-error-quark, emu_error)

static const char *const dbus_names[_EMU_ERROR_MAX] = {
        [EMU_ERROR_FAILED] = "org.emud.Error.Failed",
        [EMU_ERROR_INVALID_ID] = "org.emud.Error.InvalidId",
        [EMU_ERROR_EXISTS] = "org.emud.Error.Exists",
        [EMU_ERROR_UNKNOWN_VM] = "org.emud.Error.UnknownVM",
        [EMU_ERROR_UNKNOWN_KIND] = "org.emud.Error.UnknownKind",
        [EMU_ERROR_UNKNOWN_EMULATOR] = "org.emud.Error.UnknownEmulator",
        [EMU_ERROR_MISSING_OPTION] = "org.emud.Error.MissingOption",
        [EMU_ERROR_UNKNOWN_OPTION] = "org.emud.Error.UnknownOption",
        [EMU_ERROR_INVALID_OPTION] = "org.emud.Error.InvalidOption",
        [EMU_ERROR_BAD_PATH] = "org.emud.Error.BadPath",
        [EMU_ERROR_QMP_UNAVAILABLE] = "org.emud.Error.QmpUnavailable",
        [EMU_ERROR_NO_FREE_SLOT] = "org.emud.Error.NoFreeSlot",
        [EMU_ERROR_SPAWN_FAILED] = "org.emud.Error.SpawnFailed",
        [EMU_ERROR_HOTPLUG_FAILED] = "org.emud.Error.HotplugFailed",
        [EMU_ERROR_TIMEOUT] = "org.emud.Error.Timeout",
        [EMU_ERROR_BUSY] = "org.emud.Error.Busy",
        [EMU_ERROR_VM_LOST] = "org.emud.Error.VMLost",
        [EMU_ERROR_BAD_DESCRIPTOR] = "org.emud.Error.BadDescriptor",
        [EMU_ERROR_SHUTTING_DOWN] = "org.emud.Error.ShuttingDown",
};

const char *emu_error_dbus_name(int code)
{
        if (code < 0 || code >= _EMU_ERROR_MAX || !dbus_names[code])
                return dbus_names[EMU_ERROR_FAILED];
        return dbus_names[code];
}

int emu_error_from_dbus_name(const char *name)
{
        for (int i = 0; name && i < _EMU_ERROR_MAX; i++)
                if (dbus_names[i] && strcmp(dbus_names[i], name) == 0)
                        return i;
        return EMU_ERROR_FAILED;
}
