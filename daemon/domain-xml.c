/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * domain-xml: reads what emud needs out of a libvirt domain's XML, with
 * libxml2: the emulators declared in emud's <metadata> element, the devices
 * that reach a backend over a unix socket (with the alias libvirt gave
 * them), and the uid:gid QEMU runs as. Shared by emud and its libvirt hook,
 * so that both read the metadata the same way. Parsing never touches the
 * network and never expands entities.
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "domain-xml.h"
#include "emu-error.h"

/* A domain's XML is a few kB; the cap stops a runaway input before libxml2 sees it. */
#define DOMAIN_XML_MAX (4u << 20)

static void free_emulator(gpointer p)
{
        DomainEmulator *e = p;
        g_free(e->kind);
        g_free(e->id);
        g_hash_table_unref(e->options);
        g_free(e);
}

static void free_device(gpointer p)
{
        DomainDevice *d = p;
        g_free(d->element);
        g_free(d->socket);
        g_free(d->alias);
        g_free(d);
}

void domain_xml_free(DomainXml *d)
{
        if (!d)
                return;
        g_free(d->name);
        g_ptr_array_unref(d->emulators);
        g_ptr_array_unref(d->devices);
        g_ptr_array_unref(d->disk_targets);
        g_free(d);
}

static bool is(const xmlNode *n, const char *name)
{
        return n->type == XML_ELEMENT_NODE && g_str_equal((const char *)n->name, name);
}

static bool in_emud_ns(const xmlNode *n)
{
        return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
               g_str_equal((const char *)n->ns->href, EMU_LIBVIRT_NS);
}

/* An attribute's value (g_free it), or NULL. */
static char *attr(const xmlNode *n, const char *name)
{
        xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
        char *out = g_strdup((const char *)v);
        xmlFree(v);
        return out;
}

static char *text(const xmlNode *n)
{
        xmlChar *v = xmlNodeGetContent(n);
        char *out = g_strdup((const char *)v);
        xmlFree(v);
        return out ? g_strstrip(out) : NULL;
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
        for (const xmlNode *c = n->children; c; c = c->next)
                if (is(c, name) && !c->ns)
                        return c;
        return NULL;
}

static bool fail(GError **error, const xmlNode *n, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static bool fail(GError **error, const xmlNode *n, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION, "emud metadata, line %ld: %s",
                    n ? xmlGetLineNo(n) : 0L, msg);
        return false;
}

static bool parse_emulator(DomainXml *d, const xmlNode *n, GError **error)
{
        g_autofree char *kind = attr(n, "kind"), *id = attr(n, "id");
        if (!kind || !*kind || !id || !*id)
                return fail(error, n, "<emulator> needs the attributes kind and id");
        g_autoptr(GHashTable) options = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                              g_free);
        for (const xmlNode *c = n->children; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                        continue;
                if (!in_emud_ns(c) || !is(c, "option"))
                        return fail(error, c, "unexpected element <%s> in emulator %s",
                                    (const char *)c->name, id);
                g_autofree char *name = attr(c, "name"), *value = attr(c, "value");
                if (!name || !*name || !value)
                        return fail(error, c, "<option> of emulator %s needs name and value",
                                    id);
                if (g_hash_table_contains(options, name))
                        return fail(error, c, "option %s of emulator %s is given twice", name,
                                    id);
                g_hash_table_insert(options, g_steal_pointer(&name), g_steal_pointer(&value));
        }
        for (guint i = 0; i < d->emulators->len; i++)
                if (g_str_equal(((DomainEmulator *)g_ptr_array_index(d->emulators, i))->id, id))
                        return fail(error, n, "emulator id %s is declared twice", id);
        DomainEmulator *e = g_new0(DomainEmulator, 1);
        e->kind = g_steal_pointer(&kind);
        e->id = g_steal_pointer(&id);
        e->options = g_steal_pointer(&options);
        g_ptr_array_add(d->emulators, e);
        return true;
}

static bool parse_metadata(DomainXml *d, const xmlNode *meta, GError **error)
{
        for (const xmlNode *m = meta->children; m; m = m->next) {
                if (!in_emud_ns(m))
                        continue; /* another program's metadata */
                if (!is(m, "emulators"))
                        return fail(error, m, "unknown element <%s> (expected <emulators>)",
                                    (const char *)m->name);
                if (d->declared)
                        return fail(error, m, "<emulators> is given twice");
                d->declared = true;
                for (const xmlNode *c = m->children; c; c = c->next) {
                        if (c->type != XML_ELEMENT_NODE)
                                continue;
                        if (!in_emud_ns(c) || !is(c, "emulator"))
                                return fail(error, c, "unexpected element <%s> in <emulators>",
                                            (const char *)c->name);
                        if (!parse_emulator(d, c, error))
                                return false;
                }
        }
        return true;
}

static void parse_device(DomainXml *d, const xmlNode *n)
{
        const xmlNode *target = child(n, "target");
        if (is(n, "disk") && target) {
                g_autofree char *dev = attr(target, "dev");
                if (dev)
                        g_ptr_array_add(d->disk_targets, g_steal_pointer(&dev));
        }
        const xmlNode *source = child(n, "source");
        if (!source)
                return;
        g_autofree char *path = attr(source, "socket");
        if (!path) {
                g_autofree char *type = attr(source, "type");
                if (!type || !g_str_equal(type, "unix"))
                        return;
                path = attr(source, "path");
        }
        if (!path)
                return;
        DomainDevice *dev = g_new0(DomainDevice, 1);
        dev->element = g_strdup((const char *)n->name);
        dev->socket = g_steal_pointer(&path);
        const xmlNode *alias = child(n, "alias");
        dev->alias = alias ? attr(alias, "name") : NULL;
        const xmlNode *rc = child(source, "reconnect");
        g_autofree char *enabled = rc ? attr(rc, "enabled") : NULL;
        dev->reconnect = enabled && g_str_equal(enabled, "yes");
        g_ptr_array_add(d->devices, dev);
}

/* "+UID:+GID" (or names, which emud does not resolve: it then grants nothing). */
static void parse_label(DomainXml *d, const xmlNode *root)
{
        for (const xmlNode *s = root->children; s; s = s->next) {
                g_autofree char *model = is(s, "seclabel") ? attr(s, "model") : NULL;
                const xmlNode *label = model && g_str_equal(model, "dac") ? child(s, "label")
                                                                          : NULL;
                g_autofree char *value = label ? text(label) : NULL;
                unsigned long uid, gid;
                char *end = NULL;
                if (!value || value[0] != '+')
                        continue;
                uid = strtoul(value + 1, &end, 10);
                if (!end || end[0] != ':' || end[1] != '+')
                        continue;
                gid = strtoul(end + 2, &end, 10);
                if (*end)
                        continue;
                d->have_label = true;
                d->qemu_uid = (uid_t)uid;
                d->qemu_gid = (gid_t)gid;
        }
}

DomainXml *domain_xml_parse(const char *xml, GError **error)
{
        size_t len = strlen(xml);
        if (len > DOMAIN_XML_MAX) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                            "domain XML of %zu bytes is over the limit of %u", len,
                            DOMAIN_XML_MAX);
                return NULL;
        }
        xmlDoc *doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
        if (!root || !is(root, "domain")) {
                const xmlError *xe = xmlGetLastError();
                g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                            "not a libvirt domain XML%s%s", xe && xe->message ? ": " : "",
                            xe && xe->message ? g_strchomp(xe->message) : "");
                xmlFreeDoc(doc);
                return NULL;
        }
        g_autoptr(DomainXml) d = g_new0(DomainXml, 1);
        d->emulators = g_ptr_array_new_with_free_func(free_emulator);
        d->devices = g_ptr_array_new_with_free_func(free_device);
        d->disk_targets = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *id = attr(root, "id");
        guint64 run_id = 0;
        d->run_id = id && g_ascii_string_to_unsigned(id, 10, 0, G_MAXINT, &run_id, NULL)
                            ? (int)run_id
                            : -1;
        bool ok = true;
        for (const xmlNode *n = root->children; n && ok; n = n->next) {
                if (is(n, "name") && !n->ns)
                        d->name = text(n);
                else if (is(n, "metadata") && !n->ns)
                        ok = parse_metadata(d, n, error);
                else if (is(n, "devices") && !n->ns)
                        for (const xmlNode *c = n->children; c; c = c->next)
                                if (c->type == XML_ELEMENT_NODE)
                                        parse_device(d, c);
        }
        if (ok)
                parse_label(d, root);
        xmlFreeDoc(doc);
        if (!ok)
                return NULL;
        if (!d->name || !*d->name) {
                g_set_error_literal(error, EMU_ERROR, EMU_ERROR_INVALID_OPTION,
                                    "domain XML has no <name>");
                return NULL;
        }
        return g_steal_pointer(&d);
}

const DomainDevice *domain_xml_find_device(const DomainXml *d, const char *socket)
{
        for (guint i = 0; i < d->devices->len; i++) {
                const DomainDevice *dev = g_ptr_array_index(d->devices, i);
                if (g_str_equal(dev->socket, socket))
                        return dev;
        }
        return NULL;
}

char *domain_xml_free_disk_target(const DomainXml *d)
{
        for (char c = 'a'; c <= 'z'; c++) {
                g_autofree char *name = g_strdup_printf("vd%c", c);
                bool used = false;
                for (guint i = 0; i < d->disk_targets->len && !used; i++)
                        used = g_str_equal(g_ptr_array_index(d->disk_targets, i), name);
                if (!used)
                        return g_steal_pointer(&name);
        }
        return NULL;
}
