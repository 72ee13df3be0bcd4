/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "manager.h"

/*
 * The adoption phase after an emud restart: read the state file, register
 * its VMs and emulators, take over the processes that are still the same
 * ones, remove stale files, and start the catch-up with reality (each VM
 * reconnects; each emulator asks QEMU what it has and settles). Runs once,
 * before emud serves requests.
 */
void adopt_run(Manager *m, const char *state_path);
