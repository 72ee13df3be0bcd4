/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emud: the daemon. Parses options and configuration, loads the emulator
 * kinds, claims org.emud.Manager1 on the bus and runs the GLib main loop
 * until SIGTERM or SIGINT, then tears every emulator down in order.
 *
 * Only bad configuration at start-up makes emud exit with an error; nothing
 * a client, a guest or an emulator does can.
 */
#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "adopt.h"
#include "bus-service.h"
#include "bus-source.h"
#include "config.h"
#include "confine.h"
#include "emu-cleanup.h"
#include "emu-bus.h"
#include "emu-error.h"
#include "emu-log.h"
#include "emud-build.h"
#include "libvirt-domains.h"
#include "manager.h"
#include "qmp-service.h"
#include "sandbox-cgroup.h"
#include "scope.h"
#include "state.h"

typedef struct {
        GMainLoop *loop;
        Manager *m;
        BusService *bus_service;
        guint bus_source;
        int exit_code;
        char *last_status; /* last STATUS= sent to the service manager */
} Daemon;

/* One line per kind that cannot run here, and per interop backend left out. */
static void log_catalog(const EmuCatalog *c)
{
        GHashTableIter it;
        const EmuKind *k;
        g_hash_table_iter_init(&it, c->kinds);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&k))
                if (k->unavailable)
                        g_message("kind %s (%s) is not available: %s", k->name, k->origin,
                                  k->unavailable);
        for (guint i = 0; i < c->skipped->len; i++) {
                const EmuCatalogSkip *s = g_ptr_array_index(c->skipped, i);
                g_message("vhost-user backend %s is not used: %s", s->origin, s->reason);
        }
}

static gboolean on_reload(gpointer userdata)
{
        Daemon *d = userdata;
        g_autoptr(GError) err = NULL;
        g_message("SIGHUP: reloading the kinds");
        if (manager_reload_kinds(d->m, &err))
                log_catalog(d->m->catalog);
        else
                g_warning("reload failed, keeping the kinds as they were: %s", err->message);
        return G_SOURCE_CONTINUE;
}

/*
 * An observer: STATUS= for the service manager, only when the text changes,
 * since sd_notify() blocks once the receiver's queue is full.
 */
static void notify_status(void *userdata)
{
        Daemon *d = userdata;
        g_autofree char *status = manager_status(d->m);
        if (g_strcmp0(status, d->last_status) == 0)
                return;
        sd_notifyf(0, "STATUS=%s", status);
        g_free(d->last_status);
        d->last_status = g_steal_pointer(&status);
}

static const ManagerObserver notify_observer = {
        .flushed = notify_status,
};

static void quit_when_done(Manager *m, void *userdata)
{
        Daemon *d = userdata;
        if (d->bus_service)
                bus_service_shutdown_done(d->bus_service);
        g_main_loop_quit(d->loop);
}

static gboolean on_signal(gpointer userdata)
{
        Daemon *d = userdata;
        if (d->m->shutting_down) {
                g_message("already shutting down, please wait");
                return G_SOURCE_CONTINUE;
        }
        g_message("shutting down; %u emulators keep running for the next emud to adopt",
                  g_hash_table_size(d->m->emulators));
        sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
        manager_shutdown(d->m, false);
        return G_SOURCE_CONTINUE;
}

static gboolean on_watchdog(gpointer userdata)
{
        sd_notify(0, "WATCHDOG=1");
        return G_SOURCE_CONTINUE;
}

static void on_bus_lost(int error, void *userdata)
{
        Daemon *d = userdata;
        g_critical("lost the D-Bus connection: %s; shutting down", g_strerror(error));
        d->bus_source = 0; /* the source removes itself */
        d->exit_code = 1;
        if (!d->m->shutting_down)
                manager_shutdown(d->m, false);
}

/*
 * Create the runtime directory and lock it, so that a second emud (on another
 * bus, say) cannot clean out the sockets of one that runs. The lock fd stays
 * open, and so locked, for the life of the process.
 */
static bool prepare_runtime_dir(const char *dir, GError **error)
{
        /* 0711: others may reach a socket they know the path of (qmp-socket-mode decides
         * whether they may connect), but not list what is here. */
        if (g_mkdir_with_parents(dir, 0711) < 0 || chmod(dir, 0711) < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "cannot create runtime directory %s: %s", dir, g_strerror(errno));
                return false;
        }
        g_autofree char *lock = g_build_filename(dir, "emud.lock", NULL);
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e),
                            "cannot lock %s: %s%s", lock, g_strerror(e),
                            e == EWOULDBLOCK ? " (another emud uses this runtime directory)"
                                             : "");
                if (fd >= 0)
                        close(fd);
                return false;
        }
        g_autofree char *vmdir = g_build_filename(dir, "vm", NULL);
        if (g_mkdir(vmdir, 0711) < 0 && errno != EEXIST) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "cannot create %s: %s", vmdir, g_strerror(errno));
                return false;
        }
        return true;
}

static int open_bus(bool user, sd_bus **ret)
{
        g_autoptr(sd_bus) bus = NULL;
        int r = user ? sd_bus_open_user_with_description(&bus, "emud")
                     : sd_bus_open_system_with_description(&bus, "emud");
        if (r < 0)
                return r;
        r = sd_bus_request_name(bus, EMU_BUS_NAME, 0);
        if (r < 0)
                return r;
        *ret = g_steal_pointer(&bus);
        return 0;
}

int main(int argc, char **argv)
{
        g_autofree char *config_path = NULL, *runtime_dir = NULL, *kinds_dir = NULL;
        g_autofree char *policy_dir = NULL;
        gboolean user = FALSE, debug = FALSE, version = FALSE;
        GOptionEntry entries[] = {
                { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
                  "Configuration file (default " EMUD_CONFIG_FILE ")", "FILE" },
                { "runtime-dir", 0, 0, G_OPTION_ARG_FILENAME, &runtime_dir,
                  "Runtime directory (default /run/emud)", "DIR" },
                { "emulators-dir", 0, 0, G_OPTION_ARG_FILENAME, &kinds_dir,
                  "Emulator kind descriptors (default " EMUD_KINDS_DIR ")", "DIR" },
                { "policy-dir", 0, 0, G_OPTION_ARG_FILENAME, &policy_dir,
                  "Shipped seccomp policies (default " EMUD_POLICY_DIR ")", "DIR" },
                { "user", 0, 0, G_OPTION_ARG_NONE, &user,
                  "Serve on the session bus instead of the system bus", NULL },
                { "debug", 'd', 0, G_OPTION_ARG_NONE, &debug, "Log debug messages", NULL },
                { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL },
                { NULL },
        };
        g_autoptr(GOptionContext) ctx = g_option_context_new("- run QEMU device emulators "
                                                             "out of process");
        g_option_context_add_main_entries(ctx, entries, NULL);
        g_autoptr(GError) err = NULL;
        if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
                fprintf(stderr, "emud: %s\n", err->message);
                return 2;
        }
        if (version) {
                printf("emud %s\n", EMUD_VERSION);
                return 0;
        }
        if (argc > 1) {
                fprintf(stderr, "emud: unexpected argument '%s'\n", argv[1]);
                return 2;
        }
        emu_log_init(debug);
        signal(SIGPIPE, SIG_IGN);

        EmudConfig cfg;
        emud_config_init(&cfg);
        /* A user instance keeps its sockets in the user's runtime directory, unless the
         * configuration file or the command line says otherwise. */
        const char *xdg = g_getenv("XDG_RUNTIME_DIR");
        if (user && xdg && xdg[0] == '/') {
                g_free(cfg.runtime_dir);
                cfg.runtime_dir = g_build_filename(xdg, "emud", NULL);
        }
        if (!emud_config_load(&cfg, config_path ? config_path : EMUD_CONFIG_FILE,
                              config_path != NULL, &err)) {
                g_printerr("emud: %s\n", err->message);
                emud_config_deinit(&cfg);
                return 1;
        }
        if ((runtime_dir && runtime_dir[0] != '/') || (kinds_dir && kinds_dir[0] != '/') ||
            (policy_dir && policy_dir[0] != '/')) {
                g_printerr("emud: --runtime-dir, --emulators-dir and --policy-dir need "
                           "absolute paths\n");
                emud_config_deinit(&cfg);
                return 2;
        }
        if (runtime_dir)
                g_free(cfg.runtime_dir), cfg.runtime_dir = g_steal_pointer(&runtime_dir);
        if (kinds_dir)
                g_free(cfg.kinds_dir), cfg.kinds_dir = g_steal_pointer(&kinds_dir);
        if (policy_dir)
                g_free(cfg.policy_dir), cfg.policy_dir = g_steal_pointer(&policy_dir);

        /* Once, not at every launch: a user lookup can go through NSS modules and userdb. */
        if (cfg.sandbox && cfg.emulator_uid == (uid_t)-1) {
                struct passwd *pw = getpwnam("emud-emu");
                cfg.emulator_uid = pw ? pw->pw_uid : 65534;
                cfg.emulator_gid = pw ? pw->pw_gid : 65534;
                if (!pw)
                        g_message("no user emud-emu: emulators run as 65534:65534 (nobody); "
                                  "set emulator-user in emud.conf to choose");
        }

        EmuCatalog *catalog = emu_catalog_load(cfg.kinds_dir, NULL, EMU_INTEROP_PROBE_TIMEOUT_MS, &err);
        if (!catalog) {
                g_printerr("emud: %s\n", err->message);
                emud_config_deinit(&cfg);
                return 1;
        }
        GHashTable *kinds = catalog->kinds;
        if (g_hash_table_size(kinds) == 0)
                g_warning("no emulator kinds in %s", cfg.kinds_dir);
        log_catalog(catalog);
        if (!confine_check_kinds(&cfg, kinds, &err)) {
                emu_catalog_free(catalog);
                g_printerr("emud: %s\n", err->message);
                emud_config_deinit(&cfg);
                return 1;
        }

        /* Claim the name before touching the runtime directory a running emud may own. */
        g_autoptr(sd_bus) bus = NULL;
        int r = open_bus(user, &bus);
        if (r < 0) {
                g_printerr("emud: cannot own %s on the %s bus: %s%s\n", EMU_BUS_NAME,
                           user ? "session" : "system", g_strerror(-r),
                           r == -EEXIST ? " (is another emud running?)" : "");
                emud_config_deinit(&cfg);
                return 1;
        }
        if (!prepare_runtime_dir(cfg.runtime_dir, &err)) {
                g_printerr("emud: %s\n", err->message);
                emud_config_deinit(&cfg);
                return 1;
        }

        /*
         * Once, before the first emulator and before READY=1: with emud's own
         * cgroup as the parent, emud moves into <own>/supervisor so that the
         * emulators' leaves beside it can get memory and pids limits.
         */
        if (cfg.sandbox) {
                g_autofree char *cg_parent = NULL, *cg_msg = NULL;
                r = emu_cgroup_prepare_parent(cfg.cgroup_parent, &cg_parent, &cg_msg);
                if (r < 0)
                        g_warning("cgroup: %s", cg_msg);
                else if (cg_msg)
                        g_message("cgroup: %s", cg_msg);
                if (r >= 0) {
                        g_free(cfg.cgroup_parent);
                        cfg.cgroup_parent = g_steal_pointer(&cg_parent);
                }
        }

        Daemon d = { .loop = g_main_loop_new(NULL, FALSE) };
        d.m = manager_new(&cfg, catalog);
        d.m->idle_cb = quit_when_done;
        d.m->idle_userdata = &d;
        g_autofree char *state_path = g_build_filename(cfg.runtime_dir, "state.jsonl", NULL);
        /* Observers, in the order they hear of a change: the state file goes last. */
        g_autoptr(QmpService) qmp_service = qmp_service_new(d.m);
        r = bus_service_new(d.m, qmp_service, bus, &d.bus_service);
        if (r < 0) {
                g_printerr("emud: cannot export the D-Bus API: %s\n", g_strerror(-r));
                return 1;
        }
        scope_observe(d.m, bus);
        manager_add_observer(d.m, &notify_observer, &d);
        g_autoptr(StateFile) state_file = state_file_new(d.m, state_path);
        /* The system instance follows libvirt's domains unless emud.conf says otherwise. */
        const char *uri = cfg.libvirt_uri ? cfg.libvirt_uri : user ? "" : "qemu:///system";
        LvDomains *libvirt = uri[0] ? lv_domains_new(d.m, uri) : NULL;
        d.bus_source = bus_source_attach(bus, NULL, on_bus_lost, &d);
        adopt_run(d.m, state_path);
        uint64_t watchdog_usec = 0;
        if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
                /* Sent from the main loop itself, so a stalled loop misses the deadline. */
                guint ms = (guint)MAX(watchdog_usec / 2000, 1);
                g_timeout_add(ms, on_watchdog, NULL);
                g_message("watchdog: WATCHDOG=1 every %u ms", ms);
        }
        g_unix_signal_add(SIGHUP, on_reload, &d);
        g_unix_signal_add(SIGTERM, on_signal, &d);
        g_unix_signal_add(SIGINT, on_signal, &d);

        g_message("emud %s ready on the %s bus; %u emulator kinds from %s; runtime directory "
                  "%s",
                  EMUD_VERSION, user ? "session" : "system", g_hash_table_size(kinds),
                  cfg.kinds_dir, cfg.runtime_dir);
        d.last_status = manager_status(d.m);
        sd_notifyf(0, "READY=1\nSTATUS=%s", d.last_status);

        g_main_loop_run(d.loop);

        if (d.bus_source)
                g_source_remove(d.bus_source);
        lv_domains_free(libvirt);
        manager_free(d.m);
        g_clear_pointer(&d.bus_service, bus_service_free);
        g_main_loop_unref(d.loop);
        g_free(d.last_status);
        (void)sd_bus_release_name(bus, EMU_BUS_NAME);
        emud_config_deinit(&cfg);
        g_message("stopped");
        return d.exit_code;
}
