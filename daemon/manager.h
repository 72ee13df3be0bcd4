/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>
#include <sys/types.h>

#include "config.h"
#include "process.h"
#include "sandbox.h"
#include "descriptor.h"
#include "qmp-client.h"

/*
 * The manager owns the VMs, the emulators and the kinds. Its entry points
 * are what the D-Bus API calls; long operations finish through a DoneFunc,
 * which may run before the entry point returns when validation fails.
 */
typedef struct Manager Manager;
typedef struct Vm Vm;
typedef struct Emulator Emulator;

/* error is NULL on success. */
typedef void (*DoneFunc)(void *userdata, const GError *error);

typedef enum {
        VM_CONNECTING,
        VM_CONNECTED,
        VM_LOST,
} VmState;

struct Vm {
        Manager *m;
        char *name;
        char *qmp_path;
        char **extra_qmp_paths; /* more monitors for proxy clients (NULL-terminated) */
        char *dir;              /* <runtime>/vm/<name> */
        VmState state;
        EmuQmpClient *qmp;
        GPtrArray *extra_qmp;   /* EmuQmpClient, those of extra_qmp_paths that connected */
        struct EmuQmpProxy *proxy;  /* <dir>/qmp.sock, while the VM is registered */
        GHashTable *reserved;   /* slots chosen by spawns that are not plugged yet */
        bool adopting;          /* re-connecting after an emud restart */
        DoneFunc add_done;      /* pending AddVM */
        void *add_userdata;
};

typedef enum {
        EMU_STATE_STARTING,
        EMU_STATE_RUNNING,
        EMU_STATE_PLUGGING,
        EMU_STATE_PLUGGED,
        EMU_STATE_RESTARTING,
        EMU_STATE_ADOPTING,
        EMU_STATE_UNPLUGGING,
        EMU_STATE_STOPPING,
        EMU_STATE_FAILED,
        EMU_STATE_GONE,
} EmuState;

typedef enum {
        EMU_RESTART_NO,
        EMU_RESTART_ON_FAILURE,
        EMU_RESTART_ALWAYS,
} EmuRestartPolicy;

struct Emulator {
        Manager *m;
        Vm *vm;
        const EmuKind *kind;
        EmuPlan *plan;
        char *id;
        char *qdev_id;          /* QEMU's id for the device: emud-<id> */
        char *chardev_id;       /* emud-<id>-chr */
        char *socket_path;      /* vhost-user socket, held by emud across restarts */
        char *monitor_path;     /* the emulator's QMP monitor, listening in the emulator */
        char *slot;             /* root port the device is plugged into */
        char **slot_candidates; /* root ports, between qom-list and query-pci */
        char *object_path;
        EmuState state;
        char *adopted_from;     /* the state the last emud recorded, while adopting */
        char *reason;           /* why it failed, or the last problem */

        EmuProc proc;
        EmuExit last_exit;
        int listen_fd;
        EmuQmpClient *qmp;

        EmuPolicy *policy;      /* seccomp policy of the kind, NULL when not sandboxed */
        EmuSeccompMode seccomp_mode;
        EmuSandbox *sandbox;    /* of the current launch */
        EmuSeccompWatch *watch;
        char *cgroup_path;      /* an adopted emulator's cgroup leaf, removed when it exits */
        unsigned launches;
        char *seccomp_report;   /* the last thing the filter stopped or let through */
        bool seccomp_killed;    /* the last exit was the supervisor's kill: no restart */
        GHashTable *learned;    /* learn mode: syscalls seen outside the policy */

        EmuRestartPolicy restart;
        unsigned restarts;      /* successful restarts */
        GArray *restart_times;  /* monotonic µs of recent restart attempts */

        bool started;           /* the process was launched (or adopted) */
        bool slot_search;       /* qom-list/query-pci issued */
        bool chardev_added;
        bool device_added;
        bool unplug_waiting;    /* device_del accepted, DEVICE_DELETED awaited */
        bool term_sent;
        bool qmp_busy;          /* a QMP command for this emulator is in flight */
        bool kill_requested;    /* tear down as soon as the current step ends */
        bool stop_only;         /* teardown without touching QEMU (emud shutdown) */
        GError *failure;        /* why the spawn failed; teardown follows */
        guint timer;
        DoneFunc spawn_done;
        void *spawn_userdata;
        DoneFunc kill_done;
        void *kill_userdata;
        sd_bus_slot *bus_slot;
        GPtrArray *executions;  /* QMP proxy requests on its monitor, in flight */
        int event_state;        /* last state sent as __org.emud_EMULATOR_STATE */
        pid_t event_pid;
};

struct Manager {
        EmudConfig *cfg;
        GHashTable *kinds;      /* name → EmuKind */
        GHashTable *vms;        /* name → Vm */
        GHashTable *emulators;  /* id → Emulator */
        sd_bus *bus;
        bool shutting_down;
        char *last_status;      /* last STATUS= sent to the service manager */
        char *last_state;       /* last content written to the state file */
        sd_bus_message *shutdown_reply; /* a Shutdown call, answered when done */
        bool state_error_logged;
        guint state_idle;       /* a coalesced state_save() pending */
        void (*idle_cb)(Manager *m); /* called when shutting down and no emulator is left */
};

int manager_new(EmudConfig *cfg, GHashTable *kinds, Manager **ret);
void manager_free(Manager *m);

/*
 * qmp_paths: QEMU's QMP monitor that emud uses, then optionally more
 * monitors of the same QEMU that the VM's QMP proxy spreads its clients over
 * (NULL-terminated).
 */
void manager_add_vm(Manager *m, const char *name, const char *const *qmp_paths, DoneFunc done,
                    void *userdata);
bool manager_remove_vm(Manager *m, const char *name, GError **error);
void manager_spawn(Manager *m, const char *vm, const char *kind, const char *id,
                   GHashTable *options, DoneFunc done, void *userdata);
void manager_kill(Manager *m, const char *id, DoneFunc done, void *userdata);

/*
 * Stop serving. With stop_emulators, unplug and stop every emulator first;
 * otherwise leave them running for the next emud. m->idle_cb runs when done.
 */
void manager_shutdown(Manager *m, bool stop_emulators);

bool manager_parse_restart(const char *text, EmuRestartPolicy *ret);

/* Adoption after an emud restart (emulator-adopt.c). */
Vm *manager_adopt_vm(Manager *m, const char *name, const char *qmp_path,
                     const char *const *extra_qmp_paths);
void manager_vm_lost_emulators(Vm *vm);
void manager_adopt(Manager *m);

/* Status line for sd_notify STATUS=. */
char *manager_status(Manager *m);

const char *vm_state_name(VmState s);
const char *emu_state_name(EmuState s);

/* emulator.c */
Emulator *emulator_new(Manager *m, Vm *vm, const EmuKind *kind, const char *id, EmuPlan *plan,
                       EmuRestartPolicy restart, EmuPolicy *policy, EmuSeccompMode seccomp);
void emulator_start(Emulator *e, DoneFunc done, void *userdata);
void emulator_kill(Emulator *e, DoneFunc done, void *userdata);
void emulator_vm_lost(Emulator *e);
void emulator_device_deleted(Emulator *e);
void emulator_free(Emulator *e);

/* called by emulator.c */
void manager_emulator_changed(Manager *m, Emulator *e);
void manager_emulator_seccomp(Manager *m, Emulator *e, const EmuSeccompReport *r,
                              const char *message);
void manager_emulator_gone(Manager *m, Emulator *e);
