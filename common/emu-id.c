/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emu-id: validation of the names users give to VMs and emulators.
 */
#include <string.h>

#include "emu-id.h"

bool emu_id_valid(const char *id)
{
        if (!id)
                return false;
        size_t n = strlen(id);
        if (n == 0 || n > EMU_ID_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = id[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-';
                if (!ok)
                        return false;
        }
        return true;
}
