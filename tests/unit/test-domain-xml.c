/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-domain-xml: what emud and its libvirt hook read out of a domain's
 * XML: the declared emulators (and every way the metadata can be wrong,
 * each with its line), the socket devices with their aliases, and QEMU's
 * uid:gid from the DAC label.
 */
#include "domain-xml.h"
#include <string.h>

#include "emu-error.h"

#define NS "xmlns:emud='" EMU_LIBVIRT_NS "'"

static DomainXml *parse_ok(const char *xml)
{
        g_autoptr(GError) err = NULL;
        DomainXml *d = domain_xml_parse(xml, &err);
        g_assert_no_error(err);
        g_assert_nonnull(d);
        return d;
}

static void parse_fails(const char *xml, const char *needle)
{
        g_autoptr(GError) err = NULL;
        g_autoptr(DomainXml) d = domain_xml_parse(xml, &err);
        g_assert_null(d);
        g_assert_error(err, EMU_ERROR, EMU_ERROR_INVALID_OPTION);
        if (!strstr(err->message, needle))
                g_error("'%s' does not contain '%s'", err->message, needle);
}

static const char full[] =
        "<domain type='qemu' id='7'>\n"
        "  <name>vm1</name>\n"
        "  <metadata>\n"
        "    <other:thing xmlns:other='urn:x-other'/>\n"
        "    <emud:emulators " NS ">\n"
        "      <emud:emulator kind='vhost-user-blk' id='disk0'>\n"
        "        <emud:option name='image' value='/srv/a b.raw'/>\n"
        "        <emud:option name='restart' value='no'/>\n"
        "      </emud:emulator>\n"
        "      <emud:emulator kind='vhost-user-fs' id='fs0'/>\n"
        "    </emud:emulators>\n"
        "  </metadata>\n"
        "  <devices>\n"
        "    <disk type='file' device='disk'><source file='/x.img'/><target dev='vda'/></disk>\n"
        "    <disk type='vhostuser' device='disk'>\n"
        "      <source type='unix' path='/run/emud/vm/vm1/disk0.vu.sock'>\n"
        "        <reconnect enabled='yes' timeout='1'/>\n"
        "      </source>\n"
        "      <target dev='vdb' bus='virtio'/><alias name='virtio-disk1'/>\n"
        "    </disk>\n"
        "    <filesystem type='mount'><driver type='virtiofs'/>\n"
        "      <source socket='/run/emud/vm/vm1/fs0.vu.sock'/><target dir='fs0'/>\n"
        "    </filesystem>\n"
        "  </devices>\n"
        "  <seclabel type='dynamic' model='dac' relabel='yes'><label>+999:+994</label>"
        "</seclabel>\n"
        "</domain>\n";

static void test_full(void)
{
        g_autoptr(DomainXml) d = parse_ok(full);
        g_assert_cmpstr(d->name, ==, "vm1");
        g_assert_cmpint(d->run_id, ==, 7);
        g_assert_true(d->declared);
        g_assert_cmpuint(d->emulators->len, ==, 2);
        const DomainEmulator *e = g_ptr_array_index(d->emulators, 0);
        g_assert_cmpstr(e->kind, ==, "vhost-user-blk");
        g_assert_cmpstr(e->id, ==, "disk0");
        g_assert_cmpstr(g_hash_table_lookup(e->options, "image"), ==, "/srv/a b.raw");
        g_assert_cmpstr(g_hash_table_lookup(e->options, "restart"), ==, "no");
        e = g_ptr_array_index(d->emulators, 1);
        g_assert_cmpuint(g_hash_table_size(e->options), ==, 0);

        g_assert_cmpuint(d->devices->len, ==, 2); /* the file disk has no socket */
        const DomainDevice *dev = domain_xml_find_device(d, "/run/emud/vm/vm1/disk0.vu.sock");
        g_assert_nonnull(dev);
        g_assert_cmpstr(dev->element, ==, "disk");
        g_assert_cmpstr(dev->alias, ==, "virtio-disk1");
        g_assert_true(dev->reconnect);
        dev = domain_xml_find_device(d, "/run/emud/vm/vm1/fs0.vu.sock");
        g_assert_nonnull(dev);
        g_assert_cmpstr(dev->element, ==, "filesystem");
        g_assert_null(dev->alias);
        g_assert_false(dev->reconnect);
        g_assert_null(domain_xml_find_device(d, "/nowhere"));

        g_autofree char *target = domain_xml_free_disk_target(d);
        g_assert_cmpstr(target, ==, "vdc");
        g_assert_true(d->have_label);
        g_assert_cmpuint(d->qemu_uid, ==, 999);
        g_assert_cmpuint(d->qemu_gid, ==, 994);
}

static void test_undeclared(void)
{
        g_autoptr(DomainXml) d = parse_ok("<domain><name>plain</name><metadata><x:y "
                                          "xmlns:x='urn:x'/></metadata></domain>");
        g_assert_false(d->declared);
        g_assert_cmpint(d->run_id, ==, -1); /* not running: no id */
        g_assert_cmpuint(d->emulators->len, ==, 0);
        g_assert_false(d->have_label);
        g_autoptr(DomainXml) empty =
                parse_ok("<domain><name>e</name><metadata><emud:emulators " NS
                         "/></metadata></domain>");
        g_assert_true(empty->declared);
        g_assert_cmpuint(empty->emulators->len, ==, 0);
}

static void test_bad_metadata(void)
{
#define META(x) "<domain><name>v</name><metadata><emud:emulators " NS ">" x \
                "</emud:emulators></metadata></domain>"
        parse_fails(META("<emud:emulator id='a'/>"), "needs the attributes kind and id");
        parse_fails(META("<emud:emulator kind='k' id=''/>"), "needs the attributes");
        parse_fails(META("<emud:emulator kind='k' id='a'><emud:option name='x'/>"
                         "</emud:emulator>"),
                    "needs name and value");
        parse_fails(META("<emud:emulator kind='k' id='a'><emud:option name='x' value='1'/>"
                         "<emud:option name='x' value='2'/></emud:emulator>"),
                    "option x of emulator a is given twice");
        parse_fails(META("<emud:emulator kind='k' id='a'/><emud:emulator kind='k' id='a'/>"),
                    "emulator id a is declared twice");
        parse_fails(META("<emud:disk/>"), "unexpected element <disk> in <emulators>");
        parse_fails(META("<emud:emulator kind='k' id='a'><option name='x' value='1'/>"
                         "</emud:emulator>"),
                    "unexpected element <option>");
        parse_fails("<domain><name>v</name><metadata><emud:emulator " NS " kind='k' id='a'/>"
                    "</metadata></domain>",
                    "unknown element <emulator>");
        parse_fails("<domain><name>v</name><metadata><emud:emulators " NS "/><emud:emulators "
                    NS "/></metadata></domain>",
                    "given twice");
        /* The line of the culprit is in the message. */
        parse_fails("<domain><name>v</name>\n<metadata>\n<emud:emulators " NS ">\n"
                    "<emud:emulator kind='k'/></emud:emulators></metadata></domain>",
                    "line 4:");
#undef META
}

static void test_not_a_domain(void)
{
        parse_fails("<network><name>n</name></network>", "not a libvirt domain XML");
        parse_fails("<domain><name>", "not a libvirt domain XML");
        parse_fails("", "not a libvirt domain XML");
        parse_fails("<domain><devices/></domain>", "no <name>");
        /* An entity is never expanded, and nothing is fetched. */
        g_autoptr(DomainXml) d = parse_ok(
                "<!DOCTYPE domain [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
                "<domain><name>&e;x</name></domain>");
        g_assert_null(strstr(d->name, "root:"));
}

static void test_labels(void)
{
        g_autoptr(DomainXml) names = parse_ok(
                "<domain><name>v</name><seclabel model='dac'><label>qemu:kvm</label>"
                "</seclabel></domain>");
        g_assert_false(names->have_label); /* names are not resolved: nothing is granted */
        g_autoptr(DomainXml) other = parse_ok(
                "<domain><name>v</name><seclabel model='selinux'><label>+1:+2</label>"
                "</seclabel></domain>");
        g_assert_false(other->have_label);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/domain-xml/full", test_full);
        g_test_add_func("/domain-xml/undeclared", test_undeclared);
        g_test_add_func("/domain-xml/bad-metadata", test_bad_metadata);
        g_test_add_func("/domain-xml/not-a-domain", test_not_a_domain);
        g_test_add_func("/domain-xml/labels", test_labels);
        return g_test_run();
}
