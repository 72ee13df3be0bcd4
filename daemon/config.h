/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

/* emud's settings: built-in defaults, then emud.conf, then the command line. */
typedef struct {
        char *runtime_dir;
        char *kinds_dir;
        guint qmp_timeout_ms;     /* greeting and each QMP command to QEMU */
        guint ready_timeout_ms;   /* emulator exec → QMP greeting */
        guint unplug_timeout_ms;  /* device_del → DEVICE_DELETED */
        guint stop_grace_ms;      /* SIGTERM → SIGKILL */
        guint restart_backoff_start_ms;  /* delay before the first restart */
        guint restart_backoff_cap_ms;    /* the delay doubles up to this */
        guint restart_limit_burst;       /* restarts allowed within ... */
        guint restart_limit_interval_ms; /* ... this window, then give up */
        bool give_up_unplug;             /* unplug a given-up emulator (else leave it) */
        guint qmp_socket_mode;           /* the VM's QMP proxy socket */
        uid_t qmp_socket_uid;            /* (uid_t)-1: emud's */
        gid_t qmp_socket_gid;
        guint qmp_max_message;           /* bytes per client message */
        guint qmp_max_in_flight;         /* commands per client awaiting a reply */
        bool sandbox;                    /* confine emulators (kinds choose the steps) */
        uid_t emulator_uid;              /* (uid_t)-1: user emud-emu, else 65534 */
        gid_t emulator_gid;
        char *policy_dir;                /* shipped seccomp policies */
        char *admin_policy_dir;          /* the admin's, which take precedence */
        char *cgroup_parent;             /* NULL: emud's own cgroup */
        char *libvirt_uri;               /* NULL: not set ("" in the file: no libvirt) */
} EmudConfig;

void emud_config_init(EmudConfig *c);
void emud_config_deinit(EmudConfig *c);

/*
 * Load a GKeyFile. A missing file is fine when it is the default path
 * (required == false); a bad value or unknown key is always an error.
 */
bool emud_config_load(EmudConfig *c, const char *path, bool required, GError **error);
