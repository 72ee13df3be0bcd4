/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config: emud.conf, a GKeyFile with one [emud] group.
 *
 * Unknown keys are errors rather than warnings: a misspelt timeout that is
 * silently ignored is worse than a daemon that refuses to start.
 */
#include <grp.h>
#include <pwd.h>

#include "config.h"
#include "emud-build.h"
#include "emu-error.h"

void emud_config_init(EmudConfig *c)
{
        *c = (EmudConfig){
                .runtime_dir = g_strdup("/run/emud"),
                .kinds_dir = g_strdup(EMUD_KINDS_DIR),
                .qmp_timeout_ms = 5000,
                .ready_timeout_ms = 10000,
                .unplug_timeout_ms = 10000,
                .stop_grace_ms = 5000,
                .restart_backoff_start_ms = 200,
                .restart_backoff_cap_ms = 10000,
                .restart_limit_burst = 5,
                .restart_limit_interval_ms = 60000,
                .qmp_socket_mode = 0600,
                .qmp_socket_uid = (uid_t)-1,
                .qmp_socket_gid = (gid_t)-1,
                .qmp_max_message = 1024 * 1024,
                .qmp_max_in_flight = 32,
                .sandbox = true,
                .emulator_uid = (uid_t)-1,
                .emulator_gid = (gid_t)-1,
                .policy_dir = g_strdup(EMUD_POLICY_DIR),
                .admin_policy_dir = g_strdup(EMUD_ADMIN_POLICY_DIR),
        };
}

void emud_config_deinit(EmudConfig *c)
{
        g_clear_pointer(&c->runtime_dir, g_free);
        g_clear_pointer(&c->kinds_dir, g_free);
        g_clear_pointer(&c->policy_dir, g_free);
        g_clear_pointer(&c->admin_policy_dir, g_free);
        g_clear_pointer(&c->cgroup_parent, g_free);
        g_clear_pointer(&c->libvirt_uri, g_free);
}

typedef struct {
        const char *key;
        size_t offset;
        guint64 max;
} NumberKey;

#define MS_MAX (3600 * 1000)
static const NumberKey number_keys[] = {
        { "qmp-timeout-ms", G_STRUCT_OFFSET(EmudConfig, qmp_timeout_ms), MS_MAX },
        { "ready-timeout-ms", G_STRUCT_OFFSET(EmudConfig, ready_timeout_ms), MS_MAX },
        { "unplug-timeout-ms", G_STRUCT_OFFSET(EmudConfig, unplug_timeout_ms), MS_MAX },
        { "stop-grace-ms", G_STRUCT_OFFSET(EmudConfig, stop_grace_ms), MS_MAX },
        { "restart-backoff-start-ms", G_STRUCT_OFFSET(EmudConfig, restart_backoff_start_ms),
          MS_MAX },
        { "restart-backoff-cap-ms", G_STRUCT_OFFSET(EmudConfig, restart_backoff_cap_ms),
          MS_MAX },
        { "restart-limit-burst", G_STRUCT_OFFSET(EmudConfig, restart_limit_burst), 1000 },
        { "restart-limit-interval-ms", G_STRUCT_OFFSET(EmudConfig, restart_limit_interval_ms),
          24 * MS_MAX },
        { "qmp-max-message-bytes", G_STRUCT_OFFSET(EmudConfig, qmp_max_message),
          256 * 1024 * 1024 },
        { "qmp-max-in-flight", G_STRUCT_OFFSET(EmudConfig, qmp_max_in_flight), 4096 },
};

/* A user or group given by name or number. */
static bool lookup_id(const char *value, bool group, guint32 *ret)
{
        guint64 n;
        if (g_ascii_string_to_unsigned(value, 10, 0, G_MAXUINT32 - 1, &n, NULL)) {
                *ret = (guint32)n;
                return true;
        }
        if (group) {
                struct group *g = getgrnam(value);
                if (g)
                        *ret = g->gr_gid;
                return g != NULL;
        }
        struct passwd *pw = getpwnam(value);
        if (pw)
                *ret = pw->pw_uid;
        return pw != NULL;
}

static bool load_key(EmudConfig *c, GKeyFile *kf, const char *path, const char *key,
                     GError **error)
{
        /* GLib 2.74 can return a value and set the error (bad escapes): trust the error. */
        g_autoptr(GError) err = NULL;
        g_autofree char *value = g_key_file_get_string(kf, "emud", key, &err);
        if (err || !value) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED, "%s: %s", path,
                            err ? err->message : "no value");
                return false;
        }
        if (g_str_equal(key, "runtime-dir") || g_str_equal(key, "emulators-dir") ||
            g_str_equal(key, "policy-dir") || g_str_equal(key, "cgroup-parent")) {
                if (value[0] != '/') {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "%s: %s must be an absolute path", path, key);
                        return false;
                }
                char **slot = g_str_equal(key, "runtime-dir")     ? &c->runtime_dir
                              : g_str_equal(key, "emulators-dir") ? &c->kinds_dir
                              : g_str_equal(key, "policy-dir")    ? &c->admin_policy_dir
                                                                  : &c->cgroup_parent;
                g_free(*slot);
                *slot = g_steal_pointer(&value);
                return true;
        }
        if (g_str_equal(key, "libvirt-uri")) {
                g_free(c->libvirt_uri);
                c->libvirt_uri = g_steal_pointer(&value);
                return true;
        }
        if (g_str_equal(key, "qmp-socket-mode")) {
                guint64 mode;
                if (!g_ascii_string_to_unsigned(value, 8, 0, 0777, &mode, NULL)) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "%s: qmp-socket-mode=%s must be an octal mode such as 0660",
                                    path, value);
                        return false;
                }
                c->qmp_socket_mode = (guint)mode;
                return true;
        }
        if (g_str_equal(key, "qmp-socket-user") || g_str_equal(key, "qmp-socket-group")) {
                bool group = g_str_equal(key, "qmp-socket-group");
                guint32 id;
                if (!lookup_id(value, group, &id)) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED, "%s: %s=%s: no such %s",
                                    path, key, value, group ? "group" : "user");
                        return false;
                }
                if (group)
                        c->qmp_socket_gid = (gid_t)id;
                else
                        c->qmp_socket_uid = (uid_t)id;
                return true;
        }
        if (g_str_equal(key, "sandbox")) {
                if (!g_str_equal(value, "on") && !g_str_equal(value, "off")) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "%s: sandbox=%s must be on or off", path, value);
                        return false;
                }
                c->sandbox = g_str_equal(value, "on");
                return true;
        }
        if (g_str_equal(key, "emulator-user")) {
                struct passwd *pw = getpwnam(value);
                if (!pw) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "%s: emulator-user=%s: no such user", path, value);
                        return false;
                }
                c->emulator_uid = pw->pw_uid;
                c->emulator_gid = pw->pw_gid;
                return true;
        }
        if (g_str_equal(key, "give-up-action")) {
                if (!g_str_equal(value, "leave") && !g_str_equal(value, "unplug")) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "%s: give-up-action=%s must be leave or unplug", path,
                                    value);
                        return false;
                }
                c->give_up_unplug = g_str_equal(value, "unplug");
                return true;
        }
        for (size_t i = 0; i < G_N_ELEMENTS(number_keys); i++) {
                if (!g_str_equal(key, number_keys[i].key))
                        continue;
                guint64 v;
                if (!g_ascii_string_to_unsigned(value, 10, 1, number_keys[i].max, &v, NULL)) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "%s: %s=%s must be a whole number from 1 to %" G_GUINT64_FORMAT,
                                    path, key, value, number_keys[i].max);
                        return false;
                }
                G_STRUCT_MEMBER(guint, c, number_keys[i].offset) = (guint)v;
                return true;
        }
        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED, "%s: unknown key '%s' in [emud]", path,
                    key);
        return false;
}

bool emud_config_load(EmudConfig *c, const char *path, bool required, GError **error)
{
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) err = NULL;
        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
                if (!required && g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return true;
                g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED, "%s: %s", path, err->message);
                return false;
        }
        g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
        for (size_t i = 0; groups[i]; i++) {
                if (!g_str_equal(groups[i], "emud")) {
                        g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED,
                                    "%s: unknown group [%s]", path, groups[i]);
                        return false;
                }
        }
        g_auto(GStrv) keys = g_key_file_get_keys(kf, "emud", NULL, NULL);
        for (size_t i = 0; keys && keys[i]; i++)
                if (!load_key(c, kf, path, keys[i], error))
                        return false;
        return true;
}
