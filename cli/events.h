/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Print emud's events as they happen until the bus goes (returns 1); vm may be NULL. */
int emuctl_events(sd_bus *bus, bool json, const char *vm);
