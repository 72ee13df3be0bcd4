/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#define EMU_ID_MAX 64

/*
 * Ids of VMs and emulators end up in file names, D-Bus object paths and QEMU
 * ids, so they are restricted to [A-Za-z0-9_-]{1,64}: no '/', no '.', no
 * empty string.
 */
bool emu_id_valid(const char *id);

/* Text that explains the rule, for error messages. */
#define EMU_ID_RULE "1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'"
