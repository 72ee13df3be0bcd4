/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emuctl events: what emud does, one line per event, as it happens.
 *
 * Everything comes from the signals emud already sends: the object
 * manager's InterfacesAdded and InterfacesRemoved for emulators that appear
 * and go, PropertiesChanged for their state, restarts, exits, seccomp
 * reports and reasons, and the bus's NameOwnerChanged for emud itself. The
 * last values seen of each emulator are kept, so that only what changed is
 * printed. Nothing is polled.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "emu-bus.h"
#include "emu-cleanup.h"
#include "emu-util.h"
#include "events.h"

typedef struct {
        char *vm, *id, *state, *last_exit, *seccomp, *reason;
        guint32 pid, restarts;
} Seen;

typedef struct {
        sd_bus *bus;
        bool json;
        const char *vm;         /* only this VM's emulators; NULL for all */
        GHashTable *seen;       /* object path → Seen */
} Events;

static void seen_free(gpointer p)
{
        Seen *s = p;
        g_free(s->vm);
        g_free(s->id);
        g_free(s->state);
        g_free(s->last_exit);
        g_free(s->seccomp);
        g_free(s->reason);
        g_free(s);
}

/* One line: text, or a JSON object with the same facts. */
static void emit(Events *ev, const Seen *s, const char *event, const char *from,
                 const char *to, const char *detail)
{
        if (ev->vm && s->id && g_strcmp0(ev->vm, s->vm) != 0)
                return; /* another VM's; emud's own comings and goings always show */
        g_autoptr(GDateTime) now = g_date_time_new_now_local();
        g_autofree char *time = g_date_time_format_iso8601(now);
        if (ev->json) {
                g_autoptr(json_t) o = json_pack("{s:s, s:s, s:s, s:s}", "time", time, "event",
                                                event, "vm", s->vm ? s->vm : "", "id",
                                                s->id ? s->id : "");
                if (from)
                        json_object_set_new(o, "from", json_string(from));
                if (to)
                        json_object_set_new(o, "to", json_string(to));
                if (detail)
                        json_object_set_new(o, "detail", json_string(detail));
                if (s->pid)
                        json_object_set_new(o, "pid", json_integer(s->pid));
                json_dumpf(o, stdout, JSON_COMPACT);
                putchar('\n');
        } else {
                printf("%s %s %s %s", time, s->vm ? s->vm : "-", s->id ? s->id : "-", event);
                if (from || to)
                        printf(" %s -> %s", from ? from : "?", to ? to : "?");
                if (detail)
                        printf(": %s", detail);
                if (s->pid && g_str_equal(event, "state"))
                        printf(" (pid %" PRIu32 ")", s->pid);
                putchar('\n');
        }
        fflush(stdout);
}

/* Replace *slot by value; true if it changed to something. */
static bool update(char **slot, const char *value)
{
        if (g_strcmp0(*slot, value) == 0)
                return false;
        g_free(*slot);
        *slot = g_strdup(value);
        return true;
}

/* The emulator interface's properties in msg (an a{sv}): fold into s, say what changed. */
static int read_properties(Events *ev, sd_bus_message *msg, Seen *s, bool quiet)
{
        int r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *name, *str = NULL;
                guint32 u = 0;
                if ((r = sd_bus_message_read(msg, "s", &name)) < 0)
                        return r;
                char type = 0;
                const char *contents = NULL;
                if ((r = sd_bus_message_peek_type(msg, &type, &contents)) < 0)
                        return r;
                if (contents && g_str_equal(contents, "s"))
                        r = sd_bus_message_read(msg, "v", "s", &str);
                else if (contents && g_str_equal(contents, "u"))
                        r = sd_bus_message_read(msg, "v", "u", &u);
                else
                        r = sd_bus_message_skip(msg, "v");
                if (r < 0)
                        return r;
                if ((r = sd_bus_message_exit_container(msg)) < 0)
                        return r;
                if (g_str_equal(name, "VM"))
                        update(&s->vm, str);
                else if (g_str_equal(name, "Id"))
                        update(&s->id, str);
                else if (g_str_equal(name, "Pid"))
                        s->pid = u;
                else if (g_str_equal(name, "State")) {
                        g_autofree char *old = g_strdup(s->state);
                        if (update(&s->state, str) && !quiet)
                                emit(ev, s, "state", old, str, NULL);
                } else if (g_str_equal(name, "Restarts")) {
                        if (u > s->restarts && !quiet) {
                                g_autofree char *n = g_strdup_printf("restart %" PRIu32, u);
                                emit(ev, s, "restarted", NULL, NULL, n);
                        }
                        s->restarts = u;
                } else if (g_str_equal(name, "LastExit")) {
                        if (update(&s->last_exit, str) && str && *str && !quiet)
                                emit(ev, s, "exited", NULL, NULL, str);
                } else if (g_str_equal(name, "SeccompReport")) {
                        if (update(&s->seccomp, str) && str && *str && !quiet)
                                emit(ev, s, "seccomp", NULL, NULL, str);
                } else if (g_str_equal(name, "Reason")) {
                        if (update(&s->reason, str) && str && *str && !quiet)
                                emit(ev, s, "reason", NULL, NULL, str);
                }
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

static Seen *seen_for(Events *ev, const char *path)
{
        Seen *s = g_hash_table_lookup(ev->seen, path);
        if (!s) {
                s = g_new0(Seen, 1);
                s->id = emu_bus_emulator_id(path);
                g_hash_table_insert(ev->seen, g_strdup(path), s);
        }
        return s;
}

/* The emulator interface out of an a{sa{sv}}; the others are skipped. */
static int read_interfaces(Events *ev, sd_bus_message *msg, Seen *s, bool quiet)
{
        int r = sd_bus_message_enter_container(msg, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sa{sv}")) > 0) {
                const char *iface;
                if ((r = sd_bus_message_read(msg, "s", &iface)) < 0)
                        return r;
                r = g_str_equal(iface, EMU_BUS_EMULATOR_IFACE)
                            ? read_properties(ev, msg, s, quiet)
                            : sd_bus_message_skip(msg, "a{sv}");
                if (r < 0 || (r = sd_bus_message_exit_container(msg)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

static int on_added(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Events *ev = userdata;
        const char *path;
        if (sd_bus_message_read(msg, "o", &path) < 0 || !g_str_has_prefix(path,
                                                                         EMU_BUS_EMULATOR_PREFIX))
                return 0;
        bool known = g_hash_table_contains(ev->seen, path); /* adopted: announced already */
        Seen *s = seen_for(ev, path);
        if (read_interfaces(ev, msg, s, true) >= 0 && !known)
                emit(ev, s, "new", NULL, s->state, NULL);
        return 0;
}

static int on_removed(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Events *ev = userdata;
        const char *path;
        if (sd_bus_message_read(msg, "o", &path) < 0)
                return 0;
        Seen *s = g_hash_table_lookup(ev->seen, path);
        if (s) {
                emit(ev, s, "removed", NULL, NULL, NULL);
                g_hash_table_remove(ev->seen, path);
        }
        return 0;
}

static int on_changed(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Events *ev = userdata;
        const char *iface;
        if (sd_bus_message_read(msg, "s", &iface) < 0 ||
            !g_str_equal(iface, EMU_BUS_EMULATOR_IFACE))
                return 0;
        (void)read_properties(ev, msg, seen_for(ev, sd_bus_message_get_path(msg)), false);
        return 0;
}

/*
 * What runs now, so that the first changes have something to be compared
 * with. After emud (re)started, that is what it adopted: announce it.
 */
static int snapshot(Events *ev, bool announce)
{
        g_autoptr(sd_bus_message) reply = NULL;
        emu_auto_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(ev->bus, EMU_BUS_NAME, EMU_BUS_ROOT,
                                   "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                                   &error, &reply, NULL);
        if (r < 0)
                return r;
        if ((r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}")) < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                const char *path;
                if ((r = sd_bus_message_read(reply, "o", &path)) < 0)
                        return r;
                if (!g_str_has_prefix(path, EMU_BUS_EMULATOR_PREFIX)) {
                        r = sd_bus_message_skip(reply, "a{sa{sv}}");
                } else {
                        Seen *s = seen_for(ev, path);
                        r = read_interfaces(ev, reply, s, true);
                        if (r >= 0 && announce)
                                emit(ev, s, "adopted", NULL, s->state, NULL);
                }
                if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0)
                        return r;
        }
        return r;
}

static int on_owner(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Events *ev = userdata;
        const char *name, *old, *new;
        if (sd_bus_message_read(msg, "sss", &name, &old, &new) < 0)
                return 0;
        Seen none = { 0 };
        if (*new) {
                emit(ev, &none, "emud", NULL, NULL, "started");
                (void)snapshot(ev, true);
        } else {
                emit(ev, &none, "emud", NULL, NULL, "stopped");
                g_hash_table_remove_all(ev->seen);
        }
        return 0;
}

int emuctl_events(sd_bus *bus, bool json, const char *vm)
{
        Events ev = { .bus = bus, .json = json, .vm = vm };
        ev.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, seen_free);
        int r = sd_bus_match_signal(bus, NULL, EMU_BUS_NAME, EMU_BUS_ROOT,
                                    "org.freedesktop.DBus.ObjectManager", "InterfacesAdded",
                                    on_added, &ev);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, EMU_BUS_NAME, EMU_BUS_ROOT,
                                        "org.freedesktop.DBus.ObjectManager",
                                        "InterfacesRemoved", on_removed, &ev);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='" EMU_BUS_NAME "',"
                                     "interface='org.freedesktop.DBus.Properties',"
                                     "member='PropertiesChanged',"
                                     "path_namespace='" EMU_BUS_EMULATOR_PREFIX "'",
                                     on_changed, &ev);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='org.freedesktop.DBus',"
                                     "interface='org.freedesktop.DBus',"
                                     "member='NameOwnerChanged',arg0='" EMU_BUS_NAME "'",
                                     on_owner, &ev);
        if (r < 0) {
                fprintf(stderr, "emuctl: cannot subscribe to emud's signals: %s\n",
                        g_strerror(-r));
                g_hash_table_unref(ev.seen);
                return 1;
        }
        /* Not running yet is fine: its start is an event too. */
        (void)snapshot(&ev, false);
        for (;;) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        break;
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR)
                        break;
        }
        fprintf(stderr, "emuctl: lost the bus: %s\n", g_strerror(-r));
        g_hash_table_unref(ev.seen);
        return 1;
}
