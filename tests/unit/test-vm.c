/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vm.c's choice of the chardev reconnect option: reconnect-ms where QEMU's
 * query-qmp-schema has it (QEMU >= 9.2), reconnect otherwise.
 *
 * The QEMU 7.2 case runs against the real qemu-system-x86_64. Debian 12 has
 * no QEMU 9.2, so that schema (and a failing query-qmp-schema, which real
 * QEMU does not produce) come from a scripted server; the test says so.
 */
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu-util.h"
#include "fake-qmp.h"
#include "vm.h"

typedef struct {
        bool ready;
        bool closed;
} Seen;

static void on_ready(Vm *vm, void *userdata)
{
        ((Seen *)userdata)->ready = true;
}

static void on_closed(Vm *vm, const GError *reason, void *userdata)
{
        ((Seen *)userdata)->closed = true;
}

static void on_device_deleted(Vm *vm, const char *qdev_id, void *userdata)
{
}

static const VmOps vm_ops = { on_ready, on_closed, on_device_deleted };

static void nop_changed(void *u, void *o, unsigned m)
{
}
static void nop_event(void *u, const char *vm, const char *name, json_t *data)
{
}
static void nop_collect(void *u, void *o)
{
}
static void nop_flushed(void *u)
{
}
static const DispatchOps dispatch_ops = { nop_changed, nop_event, nop_collect, nop_flushed };

typedef struct {
        EmudConfig cfg;
        Dispatch *d;
        Vm *vm;
        Seen seen;
} Fixture;

static void setup(Fixture *f, gconstpointer data)
{
        emud_config_init(&f->cfg);
        f->d = dispatch_new(&dispatch_ops, NULL);
        f->vm = vm_new(&f->cfg, f->d, &vm_ops, &f->seen, "vm1", "/nonexistent", NULL);
}

static void teardown(Fixture *f, gconstpointer data)
{
        vm_free(f->vm);
        dispatch_free(f->d);
        emud_config_deinit(&f->cfg);
}

/* The option chardev-add would carry, as its JSON key and value. */
static char *reconnect_option(const Vm *vm)
{
        g_autoptr(json_t) data = json_object();
        vm_set_reconnect(vm, data);
        emu_autofree_c *text = json_dumps(data, JSON_COMPACT);
        return g_strdup(text);
}

/* A scripted QEMU: greeting, capabilities, then the given reply to query-qmp-schema. */
static void scripted(Fixture *f, const char *schema_reply)
{
        int sv[2];
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        Server s = { .fd = sv[0], .buf = g_string_new(NULL) };
        vm_connect(f->vm, sv[1], NULL);
        server_write(&s, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
        g_autoptr(json_t) caps = server_read(&s);
        server_write(&s, "{\"return\": {}}\r\n");
        g_autoptr(json_t) query = server_read(&s);
        g_assert_cmpstr(json_string_value(json_object_get(query, "execute")), ==,
                        "query-qmp-schema");
        g_autoptr(json_t) reply = json_loads(schema_reply, 0, NULL);
        g_assert_nonnull(reply);
        json_object_set(reply, "id", json_object_get(query, "id"));
        emu_autofree_c *text = json_dumps(reply, JSON_COMPACT);
        g_autofree char *line = g_strconcat(text, "\r\n", NULL);
        server_write(&s, line);
        spin_until(&f->seen.ready);
        g_assert_cmpint(f->vm->state, ==, VM_CONNECTED);
        close(s.fd);
        g_string_free(s.buf, TRUE);
}

static void test_qemu_9_2_schema(Fixture *f, gconstpointer data)
{
        /* The member as QEMU 9.2 lists it in its socket chardev's options. */
        scripted(f, "{\"return\": [{\"name\": \"123\", \"meta-type\": \"object\", \"members\": "
                    "[{\"name\": \"server\", \"type\": \"bool\"}, {\"name\": "
                    "\"reconnect-ms\", \"type\": \"int\", \"default\": null}]}]}");
        g_autofree char *opt = reconnect_option(f->vm);
        g_assert_cmpstr(opt, ==, "{\"reconnect-ms\":100}");
}

static void test_schema_error(Fixture *f, gconstpointer data)
{
        /* emud warns here, on purpose: not fatal for this one case. */
        GLogLevelFlags fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
        scripted(f, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}");
        g_log_set_always_fatal(fatal);
        g_autofree char *opt = reconnect_option(f->vm);
        g_assert_cmpstr(opt, ==, "{\"reconnect\":1}");
}

static void test_real_qemu(Fixture *f, gconstpointer data)
{
        g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
        if (!qemu) {
                g_test_skip("qemu-system-x86_64 is not installed");
                return;
        }
        g_autofree char *dir = g_dir_make_tmp("test-vm-XXXXXX", NULL);
        g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
        g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", sock);
        const char *argv[] = { qemu, "-M", "none", "-nodefaults", "-display", "none",
                               "-S", "-qmp", spec, NULL };
        GPid pid;
        g_autoptr(GError) err = NULL;
        g_assert_true(g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &pid, &err));
        int fd = -1;
        for (int i = 0; i < 500 && fd < 0; i++) {
                g_autoptr(GError) cerr = NULL;
                fd = emu_qmp_connect_unix(sock, &cerr);
                if (fd < 0)
                        g_usleep(10000);
        }
        g_assert_cmpint(fd, >=, 0);
        vm_connect(f->vm, fd, NULL);
        spin_until(&f->seen.ready);
        /* QEMU 7.2 (Debian 12) has no reconnect-ms: the seconds option it is. */
        g_autofree char *opt = reconnect_option(f->vm);
        g_assert_cmpstr(opt, ==, "{\"reconnect\":1}");
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        g_spawn_close_pid(pid);
        g_unlink(sock);
        g_rmdir(dir);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add("/vm/reconnect/qemu-9.2-schema", Fixture, NULL, setup, test_qemu_9_2_schema,
                   teardown);
        g_test_add("/vm/reconnect/schema-error", Fixture, NULL, setup, test_schema_error,
                   teardown);
        g_test_add("/vm/reconnect/real-qemu", Fixture, NULL, setup, test_real_qemu, teardown);
        return g_test_run();
}
