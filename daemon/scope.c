/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * scope: one transient systemd scope per emulator.
 *
 * Emulators belong to their VMs, not to emud: a `systemctl restart emud`
 * must leave them running so that the new emud can adopt them. Processes
 * in emud.service's cgroup would be killed with it (unless KillMode=process,
 * which the unit also sets as a second line of defence), so each emulator
 * is moved into a scope with StartTransientUnit right after it starts: an
 * observer that acts on each new process (EMU_DIRTY_LAUNCHED).
 */
#include <systemd/sd-daemon.h>

#include "emu-cleanup.h"
#include "emu-log.h"
#include "scope.h"

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        char *what = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e)
                emu_warn(NULL, "%s: cannot move it into a systemd scope (%s); it stays in "
                         "emud's cgroup (KillMode=process still spares it on a restart)",
                         what, e->message ? e->message : e->name);
        g_free(what);
        return 0;
}

static void attach(sd_bus *bus, const Emulator *e)
{
        if (e->proc.pid <= 0)
                return;
        /* '.' never occurs in names or ids, so "vm.id" cannot collide. */
        g_autofree char *unit = g_strdup_printf("emud-%s.%s.scope", e->vm->name, e->id);
        g_autofree char *desc = g_strdup_printf("emud emulator %s (%s) of VM %s", e->id,
                                                e->kind->name, e->vm->name);
        g_autoptr(sd_bus_message) msg = NULL;
        int r = sd_bus_message_new_method_call(bus, &msg, "org.freedesktop.systemd1",
                                               "/org/freedesktop/systemd1",
                                               "org.freedesktop.systemd1.Manager",
                                               "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(msg, "ss", unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(msg, "(sv)(sv)(sv)", "PIDs", "au", 1,
                                          (uint32_t)e->proc.pid, "Description", "s", desc,
                                          "CollectMode", "s", "inactive-or-failed");
        /* The scope takes the process out of its sandbox cgroup leaf: carry the limits. */
        if (r >= 0 && e->kind->memory_max)
                r = sd_bus_message_append(msg, "(sv)", "MemoryMax", "t", e->kind->memory_max);
        if (r >= 0 && e->kind->pids_max)
                r = sd_bus_message_append(msg, "(sv)", "TasksMax", "t", e->kind->pids_max);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_append(msg, "a(sa(sv))", 0);
        char *what = g_strdup(e->id);
        if (r >= 0)
                r = sd_bus_call_async(bus, NULL, msg, on_reply, what, 0);
        if (r < 0) {
                g_free(what);
                EmuLogCtx ctx = { .vm = e->vm->name, .emulator = e->id };
                emu_warn(&ctx, "cannot ask systemd for a scope: %s", g_strerror(-r));
        }
}

static void on_emulator_changed(void *userdata, Emulator *e, unsigned mask)
{
        if (mask & EMU_DIRTY_LAUNCHED)
                attach(userdata, e);
}

static const ManagerObserver observer = {
        .emulator_changed = on_emulator_changed,
};

void scope_observe(Manager *m, sd_bus *bus)
{
        if (sd_booted() > 0)
                manager_add_observer(m, &observer, bus);
}
