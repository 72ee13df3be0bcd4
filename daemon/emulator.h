/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <sys/types.h>

#include "config.h"
#include "descriptor.h"
#include "dispatch.h"
#include "emu-log.h"
#include "process.h"
#include "qmp-client.h"
#include "sandbox.h"
#include "vm.h"

/*
 * One emulator: a state machine over its process and its device in the
 * VM's QEMU. It records what happened, decides in emulator_advance() what
 * to do next, and reports outward only through its Dispatch: changes as
 * dirty bits, answers to the requests that started or stopped it, events,
 * and, once it is gone, a request to be collected. It never frees itself;
 * its owner does, when the dispatch pass collects it.
 */
typedef struct Emulator Emulator;

typedef enum {
        EMU_STATE_STARTING,
        EMU_STATE_RUNNING,
        EMU_STATE_PLUGGING,
        EMU_STATE_PLUGGED,
        EMU_STATE_PREPARED,     /* ready for a QEMU that is not running yet (cold-plug) */
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

/* What changed, for the observers (dispatch_mark). VM bits are in vm.h. */
enum {
        EMU_DIRTY_NEW = 1u << 0,      /* created: export it */
        EMU_DIRTY_STATE = 1u << 1,    /* state or pid */
        EMU_DIRTY_PROPS = 1u << 2,    /* reason, slot, exit, seccomp report, restarts */
        EMU_DIRTY_LAUNCHED = 1u << 3, /* a new process: record it, give it a scope */
};

struct Emulator {
        DispatchType type;
        const EmudConfig *cfg;
        Dispatch *dispatch;
        Vm *vm;
        EmuKind *kind;          /* a reference */
        EmuPlan *plan;
        char *id;
        char *qdev_id;          /* QEMU's id for the device: emud-<id> */
        char *chardev_id;       /* emud-<id>-chr */
        char *socket_path;      /* vhost-user socket, held by emud across restarts */
        char *monitor_path;     /* the emulator's QMP monitor, listening in the emulator */
        char *slot;             /* root port the device is plugged into */
        char **slot_candidates; /* root ports, between qom-list and query-pci */
        EmuState state;
        char *reason;           /* why it failed, or the last problem */

        EmuProc proc;
        EmuExit last_exit;
        int listen_fd;          /* vhost-user kinds: the socket QEMU connects to */
        int remote_fd;          /* remote kinds: emud's end of the socketpair, until getfd */
        char *fd_name;          /* remote kinds: the name getfd gives it in QEMU */
        EmuQmpClient *qmp;      /* the emulator's own monitor */
        GPtrArray *executions;  /* commands on that monitor for a requester, in flight */

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

        /* Facts, recorded by callbacks and read by emulator_advance(). */
        bool started;           /* the process was launched (or adopted) */
        bool exit_pending;      /* the process exited; not yet acted upon */
        bool ready;             /* the current process is ready (its kind's readiness) */
        bool cold;              /* prepared for QEMU's command line, not yet seen in QEMU */
        unsigned chassis;       /* cold: the chassis of the root port it gets */
        bool restart_due;       /* the backoff timer fired */
        bool ready_late;        /* a restarted process missed its greeting deadline */
        bool slot_search;       /* qom-list/query-pci issued */
        bool chardev_added;
        bool fd_sent;           /* getfd done, the fd not yet taken by device_add */
        bool device_added;
        bool unplug_waiting;    /* device_del accepted, DEVICE_DELETED awaited */
        bool term_sent;
        bool qmp_busy;          /* a QMP command for this emulator is in flight */
        bool kill_requested;    /* tear down as soon as the current step ends */
        bool kill_forced;       /* an unplug that QEMU refuses does not stop the teardown */
        char *adopted_from;     /* adoption: the state the last emud recorded */
        bool probed;            /* adoption: device_added and chardev_added are QEMU's */
        GError *failure;        /* why the spawn failed; teardown follows */
        GError *unplug_error;   /* QEMU did not let the device go (device_del, timeout) */
        guint timer;
        guint poll_timer;       /* readiness "listening": looking for its socket */
        DoneFunc spawn_done;
        void *spawn_userdata;
        DoneFunc kill_done;
        void *kill_userdata;
};

const char *emu_state_name(EmuState s);
const char *emu_restart_name(EmuRestartPolicy r);
bool emu_restart_from_name(const char *text, EmuRestartPolicy *ret);

EmuLogCtx emulator_log_ctx(const Emulator *e);

Emulator *emulator_new(const EmudConfig *cfg, Dispatch *dispatch, Vm *vm, EmuKind *kind,
                       const char *id, EmuPlan *plan, EmuRestartPolicy restart,
                       EmuPolicy *policy, EmuSeccompMode seccomp);
void emulator_free(Emulator *e);
/* Its socket, or "" for a kind that has none (a remote kind's socketpair). */
const char *emulator_socket(const Emulator *e);
/*
 * The socket between QEMU and the emulator: RUNTIME/vm/VM/ID.vu.sock, or
 * RUNTIME/vm/VM/ID.d/vu.sock for a kind that binds it itself.
 */
char *emulator_socket_path(const Vm *vm, const char *id, const EmuKind *kind);

/* done is answered through the dispatch, never from inside the call. */
void emulator_start(Emulator *e, DoneFunc done, void *userdata);
/*
 * Cold-plug: start the process for a QEMU that is not running yet; done
 * once it is ready. When the VM's QEMU answers and lists the device, the
 * emulator is plugged; if QEMU lacks it, it is hot-plugged when the kind
 * allows it, else it fails.
 */
void emulator_prepare(Emulator *e, unsigned chassis, DoneFunc done, void *userdata);
/* What QEMU's command line needs to have the device at start (NULL-terminated). */
char **emulator_qemu_args(const Emulator *e);
/* force: stop the process even if QEMU will not let the device go (emud shutdown). */
void emulator_kill(Emulator *e, bool force, DoneFunc done, void *userdata);

/*
 * Adoption after an emud restart: take over the process if pid still names
 * it (start_time); then, once the VM is connected, QEMU is asked what it
 * has and emulator_advance() settles the emulator.
 */
void emulator_adopt(Emulator *e, const char *was, pid_t pid, guint64 start_time);

/* Events from the VM, routed by the manager. */
void emulator_vm_ready(Emulator *e);
void emulator_vm_lost(Emulator *e);
void emulator_device_deleted(Emulator *e);

/* Whether libvirt has a device model for the kind's device; else error says so. */
bool emulator_libvirt_supported(const EmuKind *kind, const char *domain, GError **error);
/* libvirt's XML for the device (alias may be NULL; target: a disk's name). */
char *emulator_libvirt_device_xml(const Emulator *e, const char *alias, const char *target);
/* A libvirt domain's QEMU (its DAC label) may connect to the emulator's socket. */
void emulator_libvirt_grant(Emulator *e);

/* A command on the emulator's own monitor, for the QMP service. */
typedef void (*EmuExecFunc)(void *userdata, json_t *ret, const GError *error);
bool emulator_execute(Emulator *e, const char *command, json_t *args, EmuExecFunc done,
                      void *userdata, GError **error);

/* Learn mode: the policy that would have allowed what the emulator did. */
char *emulator_dump_policy(Emulator *e, GError **error);
