/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"
#include "qmp-service.h"

/*
 * The D-Bus front end and observer: org.emud.Manager1 at /org/emud/Manager1
 * and an org.emud.Emulator1 object per emulator. The name is requested by
 * the caller; everything is exported on bus at once.
 */
typedef struct BusService BusService;

int bus_service_new(Manager *m, QmpService *qmp, sd_bus *bus, BusService **ret);
void bus_service_free(BusService *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BusService, bus_service_free)

/* Answer a pending Shutdown call: emud is done. */
void bus_service_shutdown_done(BusService *b);
