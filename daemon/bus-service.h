/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

#define EMUD_BUS_NAME "org.emud.Manager1"
#define EMUD_MANAGER_PATH "/org/emud/Manager1"
#define EMUD_MANAGER_IFACE "org.emud.Manager1"
#define EMUD_EMULATOR_IFACE "org.emud.Emulator1"
#define EMUD_EMULATOR_PREFIX "/org/emud/emulator"

/* Export the manager object; the name is requested by the caller. */
int bus_service_attach(Manager *m, sd_bus *bus);

int bus_emulator_add(Manager *m, Emulator *e);
void bus_emulator_changed(Manager *m, Emulator *e);
void bus_emulator_remove(Manager *m, Emulator *e);
