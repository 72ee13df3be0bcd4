/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "config.h"
#include "dispatch.h"
#include "domain-xml.h"
#include "qmp-client.h"

/*
 * A VM: a running QEMU that emud reaches through its QMP monitor (and,
 * for the QMP proxy's clients, through more monitors of the same QEMU).
 * vm.c keeps the connection; what QEMU says that matters to emulators
 * goes to the owner through VmOps.
 */
typedef struct Vm Vm;

typedef enum {
        VM_DEFINED,     /* known by name; its QEMU is not running yet (cold-plug) */
        VM_CONNECTING,
        VM_CONNECTED,
        VM_LOST,
} VmState;

/* Dirty bits of a VM (dispatch_mark), beside the emulators' in emulator.h. */
enum {
        VM_DIRTY_STATE = 1u << 16, /* connected, lost or removed */
};

typedef struct {
        /* The monitor greeted and answered: QEMU is there. */
        void (*ready)(Vm *vm, void *userdata);
        /* The monitor connection ended; vm->add_done is still set if AddVM never completed. */
        void (*closed)(Vm *vm, const GError *reason, void *userdata);
        void (*device_deleted)(Vm *vm, const char *qdev_id, void *userdata);
} VmOps;

struct Vm {
        DispatchType type;
        const EmudConfig *cfg;
        Dispatch *dispatch;
        const VmOps *ops;
        void *ops_userdata;
        char *name;
        char *qmp_path;         /* NULL for a defined VM that was given none yet */
        char **extra_qmp_paths; /* more monitors for proxy clients (NULL-terminated) */
        char *dir;              /* <runtime>/vm/<name> */
        VmState state;
        EmuQmpClient *qmp;
        GPtrArray *extra_qmp;   /* EmuQmpClient, those of extra_qmp_paths that connected */
        GHashTable *reserved;   /* slots chosen by spawns that are not plugged yet */
        bool adopting;          /* re-connecting after an emud restart */
        bool was_defined;       /* AddVM of a defined VM is connecting: still defined on disk */
        bool removed;           /* unregistered; freed when the dispatch collects it */
        bool reconnect_ms;      /* QEMU's socket chardev takes reconnect-ms (QEMU >= 9.2) */
        /* A libvirt domain: libvirt owns QEMU's monitor, emud goes through libvirt. */
        bool libvirt;
        struct LvConn *lv;      /* emud's connection to libvirt (borrowed); may be NULL */
        DomainXml *domain;      /* the last XML seen of the running domain, or NULL */
        guint wait_timer;       /* a defined VM with a path: looking for its socket */
        DoneFunc remove_done;   /* pending RemoveVM: its emulators are being stopped */
        void *remove_userdata;
        DoneFunc add_done;      /* pending AddVM */
        void *add_userdata;
};

const char *vm_state_name(VmState s);

Vm *vm_new(const EmudConfig *cfg, Dispatch *dispatch, const VmOps *ops, void *userdata,
           const char *name, const char *qmp_path, const char *const *extra_paths);
void vm_free(Vm *vm);

/*
 * Check the monitor paths (absolute, none twice) and connect to each.
 * Returns the fds in order, or NULL with error set.
 */
GArray *vm_connect_monitors(const char *const *paths, GError **error);

/* A defined VM: set its monitor paths (the first is emud's; NULL-terminated). */
void vm_set_paths(Vm *vm, const char *const *paths);
/* A defined VM with a path: connect as soon as the socket accepts (QEMU started). */
void vm_wait_for_qemu(Vm *vm);

/* Start talking QMP on fd (and on extra_fds, -1 for one that is not there). */
void vm_connect(Vm *vm, int fd, GArray *extra_fds);

/* Adoption: reconnect to the paths the last emud recorded; VM_LOST if QEMU is gone. */
void vm_reconnect(Vm *vm);

/* Create the VM's runtime directory, removing what an earlier emud left in it. */
int vm_make_dir(Vm *vm, bool clean);
/* Remove the VM's runtime directory and whatever is left in it. */
void vm_remove_dir(Vm *vm);

/* The argument of chardev-add that makes QEMU reconnect to a restarted emulator. */
void vm_set_reconnect(const Vm *vm, json_t *socket_data);
