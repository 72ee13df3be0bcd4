/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bus-source: a GSource that runs sd-bus inside the GLib main loop.
 *
 * sd-bus tells us which poll events it wants and when its next timeout is
 * (method call timeouts, for instance); prepare() hands both to GLib and
 * dispatch() lets sd-bus process until it has nothing left to do.
 */
#include <poll.h>
#include <time.h>

#include "bus-source.h"

typedef struct {
        GSource source;
        sd_bus *bus;
        GPollFD pollfd;
        void (*lost)(int error, void *userdata);
        void *userdata;
} BusSource;

static gboolean bus_prepare(GSource *source, gint *timeout)
{
        BusSource *s = (BusSource *)source;
        int events = sd_bus_get_events(s->bus);
        s->pollfd.events = (gushort)((events & POLLIN ? G_IO_IN : 0) |
                                     (events & POLLOUT ? G_IO_OUT : 0) | G_IO_HUP | G_IO_ERR);

        uint64_t usec = UINT64_MAX;
        *timeout = -1;
        if (sd_bus_get_timeout(s->bus, &usec) >= 0 && usec != UINT64_MAX) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
                if (usec <= now)
                        return TRUE;
                uint64_t ms = (usec - now + 999) / 1000;
                *timeout = ms > G_MAXINT ? G_MAXINT : (gint)ms;
        }
        return FALSE;
}

static gboolean bus_check(GSource *source)
{
        BusSource *s = (BusSource *)source;
        if (s->pollfd.revents)
                return TRUE;
        gint timeout;
        return bus_prepare(source, &timeout);
}

static gboolean bus_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
        BusSource *s = (BusSource *)source;
        int r;
        do
                r = sd_bus_process(s->bus, NULL);
        while (r > 0);
        if (r < 0) {
                s->lost(-r, s->userdata);
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

static void bus_finalize(GSource *source)
{
        BusSource *s = (BusSource *)source;
        sd_bus_unref(s->bus);
}

static GSourceFuncs bus_source_funcs = {
        .prepare = bus_prepare,
        .check = bus_check,
        .dispatch = bus_dispatch,
        .finalize = bus_finalize,
};

guint bus_source_attach(sd_bus *bus, GMainContext *context,
                        void (*lost)(int error, void *userdata), void *userdata)
{
        GSource *source = g_source_new(&bus_source_funcs, sizeof(BusSource));
        BusSource *s = (BusSource *)source;
        s->bus = sd_bus_ref(bus);
        s->lost = lost;
        s->userdata = userdata;
        s->pollfd.fd = sd_bus_get_fd(bus);
        g_source_add_poll(source, &s->pollfd);
        g_source_set_name(source, "sd-bus");
        guint id = g_source_attach(source, context);
        g_source_unref(source);
        return id;
}
