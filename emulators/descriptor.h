/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <jansson.h>

/*
 * Emulator kinds are data. A descriptor (emulators/<kind>.json) names the
 * binary, the options a user may set and how they are checked, the argv
 * template, the fds the process inherits and the device_add driver. This
 * module loads descriptors and turns (descriptor, user options) into a plan:
 * argv, the fd roles in child order, and the device_add arguments.
 *
 * Templates: ${opt} is the option's value (commas doubled, as QEMU's option
 * syntax needs), ${!opt} the negation of a bool option, ${fd:ROLE} the fd
 * number the child sees for that role. In device properties a string that is
 * exactly ${opt} takes the option's JSON type (integer, boolean).
 */

typedef enum {
        EMU_OPT_STRING,
        EMU_OPT_PATH,
        EMU_OPT_ENUM,
        EMU_OPT_BOOL,
        EMU_OPT_UINT,
} EmuOptType;

typedef enum {
        EMU_FD_MONITOR, /* a listening socket the emulator serves its QMP monitor on */
        EMU_FD_LISTEN,  /* the vhost-user listening socket emud holds */
        EMU_FD_REMOTE,  /* one end of a socketpair; QEMU gets the other through getfd */
        _EMU_FD_MAX,
} EmuFdRole;

typedef enum {
        EMU_READY_QMP_GREETING, /* the greeting on the monitor */
        EMU_READY_OUTPUT,       /* a line of its output contains ready_output */
        EMU_READY_EXEC,         /* the process runs */
        EMU_READY_LISTENING,    /* it listens on ${socket} (listener "emulator") */
} EmuReadiness;

typedef struct {
        char *name;
        EmuOptType type;
        bool required;
        char *default_value;
        char **values;           /* enum */
        guint64 min, max;        /* uint */
        char *writable_unless;   /* path: must be writable unless this bool option is on */
        bool writable;           /* path: always writable */
        bool directory;          /* path: a directory, not a file or block device */
        char *description;
} EmuOptionSpec;

typedef struct {
        char *name;
        char *description;
        char *origin;            /* file it came from */
        char *binary;
        GPtrArray *options;      /* EmuOptionSpec*, in file order */
        char **argv;             /* templates, without the binary */
        EmuFdRole *fds;          /* child fd 3 + i has role fds[i] */
        size_t n_fds;
        EmuReadiness readiness;
        char *ready_output;      /* EMU_READY_OUTPUT: what the line contains */
        char *restart;           /* default restart policy: no, on-failure, always */
        /* Confinement profile ("sandbox" object); see emud-descriptor(5). */
        char *sandbox_steps;     /* "all", "none" or a list of steps */
        char *policy;            /* seccomp policy name; default: the kind's name */
        guint64 nofile, nproc;   /* rlimits; 0: the sandbox's defaults */
        guint64 memory_max, pids_max; /* cgroup limits; 0: not set */
        bool namespace_root;     /* uid 0 in its user namespace, with capabilities there */
        bool emulator_listens;   /* "listener": "emulator": it binds ${socket} itself */
        char *driver;
        char *chardev_property;  /* a vhost-user kind: the socket is a chardev */
        char *fd_property;       /* a remote kind: the property that names the getfd fd */
        char *socket_property;   /* the emulator listens on ${socket} itself; QEMU gets
                                    {"type": "unix", "path": ...} in this property */
        json_t *device_properties;
        bool hotplug;            /* device_add works on a running QEMU */
        bool reconnect;          /* the chardev reconnects to a restarted emulator */
        json_t *requires;        /* probes that decide whether the kind can run here */
        char *package;           /* what provides binary, for messages */
        /* Set when the kinds are loaded (emu_kinds_check()). */
        char *source;            /* "descriptor" or "interop" */
        char *unavailable;       /* why it cannot be spawned here; NULL if it can */
        int refs;
} EmuKind;

EmuKind *emu_kind_load_data(const char *json, const char *origin, GError **error);
EmuKind *emu_kind_load_file(const char *path, GError **error);
/* Kinds are shared between the table and the emulators made from them. */
EmuKind *emu_kind_ref(EmuKind *k);
void emu_kind_unref(EmuKind *k);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuKind, emu_kind_unref)

/* The fd number the process has for role (3 plus its index in fds), or -1. */
int emu_kind_fd_number(const EmuKind *k, EmuFdRole role);
/* value as a QEMU option value: every comma doubled. */
void emu_qemu_opt_append(GString *out, const char *value);
/* Whether a new process can serve the device QEMU already has (restart in place). */
bool emu_kind_restartable(const EmuKind *k);
const EmuOptionSpec *emu_kind_find_option(const EmuKind *k, const char *name);
/* Whether the emulator gets a path option's file read-write, given the plan's values. */
bool emu_option_writable(const EmuOptionSpec *o, GHashTable *values);

/* Load every *.json in dir; name → EmuKind*. A bad descriptor fails the whole load. */
GHashTable *emu_kinds_load_dir(const char *dir, GError **error);

typedef struct {
        char **argv;             /* binary first, NULL terminated */
        GHashTable *values;      /* option → normalised value, defaults filled in */
        json_t *device_args;     /* driver and properties; caller adds id, bus, chardev */
} EmuPlan;

/* Check options (a name → value table) against the kind and render the plan. */
EmuPlan *emu_plan_new(const EmuKind *k, GHashTable *options, GError **error);
/*
 * The same without opening the files that path options name: for an emulator
 * that already runs (adoption), whose files are its business now.
 */
EmuPlan *emu_plan_new_unchecked(const EmuKind *k, GHashTable *options, GError **error);
/* The same, with ${socket} expanding to socket_path (the emulator's socket). */
EmuPlan *emu_plan_new_at(const EmuKind *k, GHashTable *options, const char *socket_path,
                         bool check_paths, GError **error);
void emu_plan_free(EmuPlan *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuPlan, emu_plan_free)

const char *emu_fd_role_name(EmuFdRole role);
