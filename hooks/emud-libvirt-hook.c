/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emud-libvirt-hook: libvirt's QEMU hook for emud, installed as
 * /etc/libvirt/hooks/qemu.d/50-emud. libvirt runs it as
 * "NAME OP SUBOP EXTRA" with the domain's XML on stdin, blocks that domain
 * until it exits and gives it no time limit, so it only reads, asks emud
 * over the system bus (with a deadline) and exits; it never calls libvirt.
 *
 *   prepare: emud starts the emulators the domain's <metadata> declares and
 *            answers once they listen. A failure is one line on stderr and
 *            exit 1, which libvirt shows in "virsh start".
 *   start:   QEMU's uid is now in the XML; emud lets it reach the sockets.
 *   started, stopped, release: emud is told, and the hook exits at once;
 *            "stopped" and "release" never fail.
 *
 * A domain without emud's metadata is none of emud's business at prepare,
 * start and started: the hook exits 0 without asking (emud need not run).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "domain-xml.h"
#include "emu-bus.h"
#include "emu-cleanup.h"

#define XML_MAX (4u << 20)
/* prepare waits for emulators to be ready (emud's ready-timeout-ms is 10 s by default). */
#define PREPARE_TIMEOUT_USEC (60ull * 1000 * 1000)
#define OTHER_TIMEOUT_USEC (5ull * 1000 * 1000)

static char *read_stdin(void)
{
        g_autoptr(GString) buf = g_string_new(NULL);
        char chunk[65536];
        for (;;) {
                ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return NULL;
                if (n == 0)
                        break;
                if (buf->len + (size_t)n > XML_MAX)
                        return NULL;
                g_string_append_len(buf, chunk, n);
        }
        return g_string_free(g_steal_pointer(&buf), FALSE);
}

/* Why the call failed, in words for "virsh start". */
static const char *explain(int r, const sd_bus_error *error)
{
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return "emud is not running (nothing owns org.emud.Manager1 on the system bus)";
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_NO_REPLY) || r == -ETIMEDOUT)
                return "emud did not answer in time";
        if (sd_bus_error_is_set(error))
                return error->message;
        return strerror(-r);
}

int main(int argc, char **argv)
{
        if (argc < 3) {
                fprintf(stderr, "usage: %s DOMAIN OPERATION SUB-OPERATION [EXTRA] < XML\n"
                                "(libvirt runs it; see emud-libvirt(7))\n",
                        argv[0]);
                return 2;
        }
        /* Nothing libvirtd had open stays open while emud is asked. */
        close_range(3, ~0u, 0);
        const char *op = argv[2], *subop = argv[3] ? argv[3] : "-";
        bool must_succeed = g_str_equal(op, "prepare") || g_str_equal(op, "start");
        bool going = g_str_equal(op, "stopped") || g_str_equal(op, "release");
        if (!must_succeed && !going && !g_str_equal(op, "started"))
                return 0; /* reconnect, migrate, restore, attach: nothing for emud */

        g_autofree char *xml = read_stdin();
        if (!xml) {
                fprintf(stderr, "emud: cannot read the domain XML of %s on stdin\n", argv[1]);
                return going ? 0 : 1;
        }
        g_autoptr(GError) err = NULL;
        g_autoptr(DomainXml) d = domain_xml_parse(xml, &err);
        if (!d) {
                if (going)
                        return 0;
                fprintf(stderr, "emud: domain %s: %s\n", argv[1], err->message);
                return 1;
        }
        /* emud follows what it started; a domain it never heard of is left alone. */
        if (!d->declared && !going)
                return 0;

        g_autoptr(sd_bus) bus = NULL;
        emu_auto_bus_error error = SD_BUS_ERROR_NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        int r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_set_method_call_timeout(bus, g_str_equal(op, "prepare")
                                                                ? PREPARE_TIMEOUT_USEC
                                                                : OTHER_TIMEOUT_USEC);
        if (r >= 0)
                r = sd_bus_call_method(bus, EMU_BUS_NAME, EMU_BUS_MANAGER_PATH,
                                       EMU_BUS_MANAGER_IFACE, "LibvirtHook", &error, &reply,
                                       "sss", op, subop, xml);
        if (r >= 0)
                return 0;
        const char *why = r == -ENOENT || r == -ECONNREFUSED
                                  ? "no system bus (is dbus-daemon running?)"
                                  : explain(r, &error);
        if (going)
                return 0; /* libvirt must always be able to tear a domain down */
        fprintf(stderr, "emud: domain %s: %s%s\n", d->name, why,
                must_succeed ? "" : " (the domain runs; emud catches up from libvirt's events)");
        return must_succeed ? 1 : 0;
}
