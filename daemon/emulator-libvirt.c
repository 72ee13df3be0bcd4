/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emulator-libvirt: the steps an emulator takes in a VM that libvirt runs,
 * where libvirt owns QEMU's monitor. A device goes in and out through
 * libvirt's own device model (attach and detach by alias, answered on the
 * main loop), and whether QEMU has it is read from the domain's live XML,
 * where it is the device whose source is the emulator's socket. Like
 * emulator-qmp.c, each step only records what happened and returns to
 * emulator_advance().
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu-error.h"
#include "emulator-internal.h"
#include "libvirt-conn.h"

static void on_done(void *call, const GError *error)
{
        emulator_step_reply(call, NULL, error);
}

/* The step fails at once (through the same path) when libvirt is not there. */
static bool have_libvirt(Emulator *e, StepFunc step)
{
        if (e->vm->lv)
                return true;
        g_autoptr(GError) err = g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                            "emud has no libvirt connection (emud.conf: "
                                            "libvirt-uri)");
        emulator_step_reply(emulator_step_begin(e, step), NULL, err);
        return false;
}

static void append_attr(GString *s, const char *name, const char *value)
{
        g_autofree char *v = g_markup_escape_text(value, -1);
        g_string_append_printf(s, " %s='%s'", name, v);
}

static bool is_disk(const EmuKind *k)
{
        return g_str_equal(k->driver, "vhost-user-blk-pci");
}

static bool is_filesystem(const EmuKind *k)
{
        return g_str_equal(k->driver, "vhost-user-fs-pci");
}

bool emulator_libvirt_supported(const EmuKind *kind, const char *domain, GError **error)
{
        if (is_disk(kind) || is_filesystem(kind))
                return true;
        g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                    "kind %s (QEMU device %s) cannot go into libvirt domain %s: libvirt has no "
                    "device model for it that emud uses (see emud-libvirt(7))",
                    kind->name, kind->driver, domain);
        return false;
}

/*
 * libvirt's element for the emulator's device. alias may be NULL (what a
 * user writes into the domain XML); target is the disk's name.
 */
char *emulator_libvirt_device_xml(const Emulator *e, const char *alias, const char *target)
{
        GHashTable *values = e->plan->values;
        g_autoptr(GString) s = g_string_new(NULL);
        if (is_disk(e->kind)) {
                const char *queues = g_hash_table_lookup(values, "num-queues");
                g_string_append(s, "<disk type='vhostuser' device='disk'><driver name='qemu' "
                                   "type='raw'");
                if (queues)
                        append_attr(s, "queues", queues);
                g_string_append(s, "/><source type='unix'");
                append_attr(s, "path", e->socket_path);
                g_string_append(s, "><reconnect enabled='yes' timeout='1'/></source><target");
                append_attr(s, "dev", target);
                /* No <readonly/>: libvirt 9.0 refuses it for vhostuser; the export is
                 * read-only itself (readonly=on), and the guest sees that. */
                g_string_append(s, " bus='virtio'/>");
        } else {
                const char *tag = g_hash_table_lookup(values, "tag");
                g_string_append(s, "<filesystem type='mount' accessmode='passthrough'>"
                                   "<driver type='virtiofs' queue='1024'/><source");
                append_attr(s, "socket", e->socket_path);
                g_string_append(s, "/><target");
                append_attr(s, "dir", tag ? tag : e->id);
                g_string_append(s, "/>");
        }
        if (alias) {
                g_string_append(s, "<alias");
                append_attr(s, "name", alias);
                g_string_append(s, "/>");
        }
        g_string_append(s, is_disk(e->kind) ? "</disk>" : "</filesystem>");
        return g_string_free(g_steal_pointer(&s), FALSE);
}

static void step_attach(Emulator *e, json_t *ret, const GError *error)
{
        if (error) {
                /* libvirt 9.0 forgets a plain <access mode='shared'/> when libvirtd restarts. */
                bool memory = strstr(error->message, "requires shared memory") != NULL;
                emulator_fail(e, EMU_ERROR_HOTPLUG_FAILED,
                              "attaching %s to libvirt domain %s failed: %s%s", e->qdev_id,
                              e->vm->name, error->message,
                              memory ? " (give the domain's memory a NUMA cell with "
                                       "memAccess='shared'; see emud-libvirt(7))"
                                     : "");
                return;
        }
        e->device_added = true;
        /* Until libvirt's next XML says so, keep its disk name from being chosen twice. */
        if (e->vm->domain && is_disk(e->kind))
                g_ptr_array_add(e->vm->domain->disk_targets,
                                domain_xml_free_disk_target(e->vm->domain));
}

void emulator_libvirt_attach(Emulator *e)
{
        if (!have_libvirt(e, step_attach))
                return;
        g_autofree char *target =
                e->vm->domain ? domain_xml_free_disk_target(e->vm->domain) : NULL;
        if (is_disk(e->kind) && !target) {
                g_autoptr(GError) err = g_error_new(EMU_ERROR, EMU_ERROR_NO_FREE_SLOT,
                                                    "no free disk name vda…vdz");
                emulator_step_reply(emulator_step_begin(e, step_attach), NULL, err);
                return;
        }
        g_autofree char *xml = emulator_libvirt_device_xml(e, e->qdev_id, target);
        lv_conn_attach(e->vm->lv, e->vm->name, xml, on_done, emulator_step_begin(e, step_attach));
}

void emulator_libvirt_detach(Emulator *e, StepFunc step)
{
        if (have_libvirt(e, step))
                lv_conn_detach(e->vm->lv, e->vm->name, e->qdev_id, on_done,
                               emulator_step_begin(e, step));
}

/*
 * Does the domain's live XML have a device on the emulator's socket? Its
 * alias becomes the device's id, which libvirt's device-removed names.
 */
void emulator_libvirt_probe(Emulator *e)
{
        const DomainDevice *dev =
                e->vm->domain ? domain_xml_find_device(e->vm->domain, e->socket_path) : NULL;
        e->device_added = dev && dev->alias;
        if (e->device_added && !g_str_equal(e->qdev_id, dev->alias)) {
                g_free(e->qdev_id);
                e->qdev_id = g_strdup(dev->alias);
                emulator_mark(e, EMU_DIRTY_PROPS);
        }
        e->probed = true;
        emulator_advance(e);
}

/*
 * QEMU runs as the domain's DAC label: it may connect to this socket, and
 * nobody else gains anything (the directories above it are 0711).
 */
void emulator_libvirt_grant(Emulator *e)
{
        const DomainXml *d = e->vm->domain;
        if (!d || !d->have_label || e->listen_fd < 0)
                return;
        if (chown(e->socket_path, d->qemu_uid, d->qemu_gid) < 0 ||
            chmod(e->socket_path, 0600) < 0) {
                EmuLogCtx ctx = emulator_log_ctx(e);
                emu_warn(&ctx, "cannot give QEMU (%u:%u) the socket %s: %s",
                         (unsigned)d->qemu_uid, (unsigned)d->qemu_gid, e->socket_path,
                         g_strerror(errno));
        }
}
