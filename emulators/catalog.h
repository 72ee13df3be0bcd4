/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>

#include "descriptor.h"

/*
 * The catalog: every kind emud offers, with where it came from and whether
 * it can run on this machine.
 *
 *   1. emud's own descriptors (every .json file in KINDS_DIR);
 *   2. QEMU's vhost-user interop descriptors (see interop.h), each turned
 *      into a kind through emud's template for its type
 *      (KINDS_DIR/interop/TYPE.json, a descriptor without "binary"). A kind
 *      of emud's own with the same name wins; so does the first interop file
 *      (by file name) of a type.
 *
 * A kind whose binary is missing, or whose "requires" probes fail, stays in
 * the catalog with ->unavailable saying why.
 */

typedef struct {
        char *kind;      /* the kind it would have been */
        char *origin;    /* the interop file */
        char *reason;    /* why it is not a kind: shadowed, unusable, no template */
} EmuCatalogSkip;

typedef struct {
        GHashTable *kinds;   /* name → EmuKind (a reference each) */
        GPtrArray *skipped;  /* EmuCatalogSkip*: interop backends that are not kinds */
} EmuCatalog;

/* interop_dirs NULL: the standard ones. A bad descriptor of emud's own fails it all. */
EmuCatalog *emu_catalog_load(const char *kinds_dir, const char *const *interop_dirs,
                             guint probe_timeout_ms, GError **error);
void emu_catalog_free(EmuCatalog *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuCatalog, emu_catalog_free)
