/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

/*
 * Drive an sd_bus connection from the GLib main loop. lost() runs once if the
 * connection fails (the source is then removed). Returns the source id.
 */
guint bus_source_attach(sd_bus *bus, GMainContext *context,
                        void (*lost)(int error, void *userdata), void *userdata);
