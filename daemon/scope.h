/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "manager.h"

/*
 * Move a freshly started emulator into a transient systemd scope of its own
 * (emud-<vm>-<id>.scope), so that stopping or restarting emud.service does
 * not touch it. Only when systemd is the init system; elsewhere a no-op.
 */
void scope_attach(Manager *m, Emulator *e);
