/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog: emud's descriptors and QEMU's interop backends, as one table of
 * kinds, each saying where it came from and whether it can run here.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "emu-error.h"
#include "emu-util.h"
#include "interop.h"

static void skip_free(EmuCatalogSkip *s)
{
        g_free(s->kind);
        g_free(s->origin);
        g_free(s->reason);
        g_free(s);
}

void emu_catalog_free(EmuCatalog *c)
{
        if (!c)
                return;
        g_hash_table_unref(c->kinds);
        g_ptr_array_unref(c->skipped);
        g_free(c);
}

static void skip(EmuCatalog *c, const char *kind, const char *origin, const char *fmt, ...)
        G_GNUC_PRINTF(4, 5);
static void skip(EmuCatalog *c, const char *kind, const char *origin, const char *fmt, ...)
{
        EmuCatalogSkip *s = g_new0(EmuCatalogSkip, 1);
        va_list ap;
        va_start(ap, fmt);
        s->reason = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        s->kind = g_strdup(kind);
        s->origin = g_strdup(origin);
        g_ptr_array_add(c->skipped, s);
}

/* Why k cannot run here, or NULL: its binary, then its probes, in order. */
static char *availability(const EmuKind *k, guint timeout_ms)
{
        if (access(k->binary, X_OK) < 0) {
                int e = errno;
                g_autofree char *pkg = k->package
                                               ? g_strdup_printf(" (Debian package %s)",
                                                                 k->package)
                                               : g_strdup("");
                return e == ENOENT ? g_strdup_printf("%s is not installed%s", k->binary, pkg)
                                   : g_strdup_printf("%s: %s", k->binary, g_strerror(e));
        }
        size_t i;
        json_t *req;
        json_array_foreach (k->requires, i, req) {
                json_t *probe = json_object_get(req, "probe");
                g_autoptr(GPtrArray) argv = g_ptr_array_new();
                g_ptr_array_add(argv, k->binary);
                size_t j;
                json_t *a;
                json_array_foreach (probe, j, a)
                        g_ptr_array_add(argv, (char *)json_string_value(a));
                g_ptr_array_add(argv, NULL);
                g_autoptr(GString) out = g_string_new(NULL);
                g_autofree char *why = emu_run_bounded((const char *const *)argv->pdata,
                                                       timeout_ms, out);
                const char *want = json_string_value(json_object_get(req, "output"));
                if (why || !strstr(out->str, want))
                        return g_strdup(json_string_value(json_object_get(req, "reason")));
        }
        return NULL;
}

/* The kind an interop backend becomes through its type's template. */
static EmuKind *from_template(const char *template_path, const EmuInteropBackend *b,
                              GError **error)
{
        g_autofree char *text = NULL;
        if (!g_file_get_contents(template_path, &text, NULL, error))
                return NULL;
        json_error_t jerr;
        g_autoptr(json_t) root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(root) || json_object_get(root, "binary")) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_DESCRIPTOR,
                            "%s: a template is a descriptor object without 'binary'",
                            template_path);
                return NULL;
        }
        json_object_set_new(root, "binary", json_string(b->binary));
        if (b->description)
                json_object_set_new(root, "description", json_string(b->description));
        g_autofree char *data = json_dumps(root, 0);
        return emu_kind_load_data(data, b->origin, error);
}

static bool add_interop(EmuCatalog *c, const char *kinds_dir, const char *const *dirs,
                        guint timeout_ms, GError **error)
{
        g_auto(GStrv) defaults = dirs ? NULL : emu_interop_default_dirs();
        g_autoptr(GPtrArray) backends =
                emu_interop_scan(dirs ? dirs : (const char *const *)defaults, timeout_ms);
        for (guint i = 0; i < backends->len; i++) {
                const EmuInteropBackend *b = g_ptr_array_index(backends, i);
                if (b->unavailable) {
                        skip(c, NULL, b->origin, "%s", b->unavailable);
                        continue;
                }
                g_autofree char *file = g_strdup_printf("%s.json", b->type);
                g_autofree char *tmpl = g_build_filename(kinds_dir, "interop", file, NULL);
                if (!g_file_test(tmpl, G_FILE_TEST_EXISTS)) {
                        skip(c, NULL, b->origin, "emud cannot plug vhost-user type '%s' (no %s)",
                             b->type, tmpl);
                        continue;
                }
                g_autoptr(EmuKind) k = from_template(tmpl, b, error);
                if (!k)
                        return false;
                const EmuKind *have = g_hash_table_lookup(c->kinds, k->name);
                if (have) {
                        skip(c, k->name, b->origin, "kind %s comes from %s", k->name,
                             have->origin);
                        continue;
                }
                k->source = g_strdup("interop");
                EmuKind *owned = g_steal_pointer(&k);
                g_hash_table_insert(c->kinds, owned->name, owned);
        }
        return true;
}

EmuCatalog *emu_catalog_load(const char *kinds_dir, const char *const *interop_dirs,
                             guint probe_timeout_ms, GError **error)
{
        g_autoptr(EmuCatalog) c = g_new0(EmuCatalog, 1);
        c->skipped = g_ptr_array_new_with_free_func((GDestroyNotify)skip_free);
        c->kinds = emu_kinds_load_dir(kinds_dir, error);
        if (!c->kinds)
                return NULL;
        GHashTableIter it;
        EmuKind *k;
        g_hash_table_iter_init(&it, c->kinds);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&k))
                k->source = g_strdup("descriptor");
        if (!add_interop(c, kinds_dir, interop_dirs, probe_timeout_ms, error))
                return NULL;
        g_hash_table_iter_init(&it, c->kinds);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&k))
                k->unavailable = availability(k, probe_timeout_ms);
        return g_steal_pointer(&c);
}
