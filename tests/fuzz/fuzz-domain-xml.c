/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-domain-xml: the reading of a libvirt domain's XML (emud's metadata,
 * socket devices, DAC label) on arbitrary bytes. Whatever it accepts must
 * hold together: a name, emulators with kind and id, devices with a socket.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "domain-xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* The reader takes a string, as D-Bus and the hook give it one. */
        g_autofree char *text = g_strndup((const char *)data, size);
        g_autoptr(GError) err = NULL;
        g_autoptr(DomainXml) d = domain_xml_parse(text, &err);
        if (!d) {
                g_assert_nonnull(err);
                g_assert_nonnull(err->message);
                return 0;
        }
        g_assert_null(err);
        g_assert_true(d->name && *d->name);
        for (guint i = 0; i < d->emulators->len; i++) {
                const DomainEmulator *e = g_ptr_array_index(d->emulators, i);
                g_assert_true(*e->kind && *e->id);
        }
        for (guint i = 0; i < d->devices->len; i++) {
                const DomainDevice *dev = g_ptr_array_index(d->devices, i);
                g_assert_true(domain_xml_find_device(d, dev->socket) != NULL);
        }
        g_autofree char *target = domain_xml_free_disk_target(d);
        g_assert_true(!target || g_str_has_prefix(target, "vd"));
        return 0;
}
