/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

/* The namespace of emud's element in a libvirt domain's <metadata>; see emud-libvirt(7). */
#define EMU_LIBVIRT_NS "https://emud.org/xmlns/libvirt/1"

/* A libvirt domain's XML, as far as emud cares: its emulators and its socket devices. */

typedef struct {
        char *kind;
        char *id;
        GHashTable *options;    /* name → value */
} DomainEmulator;

/* A device of the domain that reaches its backend over a unix socket. */
typedef struct {
        char *element;          /* "disk", "filesystem", ... */
        char *socket;           /* <source path=…> or <source socket=…> */
        char *alias;            /* <alias name=…>; NULL before libvirt assigns one */
        bool reconnect;         /* <reconnect enabled='yes'/> in the source */
} DomainDevice;

typedef struct {
        char *name;
        int run_id;             /* <domain id=…>: this run of a running domain; -1 if none */
        bool declared;          /* has emud's <emulators> element */
        GPtrArray *emulators;   /* DomainEmulator, in document order */
        GPtrArray *devices;     /* DomainDevice */
        GPtrArray *disk_targets; /* char *: every <disk><target dev=…> */
        bool have_label;        /* <seclabel model='dac'><label>+UID:+GID */
        uid_t qemu_uid;
        gid_t qemu_gid;
} DomainXml;

/* NULL with error set (one line: what is wrong and where). */
DomainXml *domain_xml_parse(const char *xml, GError **error);
void domain_xml_free(DomainXml *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainXml, domain_xml_free)

const DomainDevice *domain_xml_find_device(const DomainXml *d, const char *socket);
/* The first of vda…vdz that no disk uses; NULL if all are taken. */
char *domain_xml_free_disk_target(const DomainXml *d);
