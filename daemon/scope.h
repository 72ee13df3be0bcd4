/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

/*
 * Move each freshly started emulator into a transient systemd scope of its
 * own (emud-<vm>.<id>.scope), so that stopping or restarting emud.service
 * does not touch it. Only when systemd is the init system; elsewhere it does
 * not register. bus must outlive the manager's dispatch passes.
 */
void scope_observe(Manager *m, sd_bus *bus);
