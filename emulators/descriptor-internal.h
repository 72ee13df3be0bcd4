/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Shared by descriptor.c (loading) and plan.c (rendering). */

#include "descriptor.h"

/* Set a BadDescriptor error naming k's file; returns false. */
bool emu_kind_bad(GError **error, const EmuKind *k, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Check a value against its spec; the normalised value, or NULL with error set. */
char *emu_option_normalise(const EmuKind *k, const EmuOptionSpec *o, const char *value,
                           GError **error);

/*
 * Expand one template into out. With values == NULL it only checks that
 * every reference names a known option or fd role (done at load time).
 */
bool emu_template_expand(const EmuKind *k, const char *tmpl, GHashTable *values, bool escape,
                         GString *out, GError **error);
/* A device property value: "${opt}" alone takes the option's JSON type. */
json_t *emu_template_render(const EmuKind *k, json_t *tmpl, GHashTable *values,
                            GError **error);
