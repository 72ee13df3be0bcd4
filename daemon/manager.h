/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "config.h"
#include "catalog.h"
#include "interop.h"
#include "descriptor.h"
#include "dispatch.h"
#include "emulator.h"
#include "vm.h"

/*
 * The manager owns the VMs, the emulators and the kinds. Its entry points
 * are what the front ends (D-Bus, QMP) call: each validates first, so a
 * request that fails leaves no trace. Long operations answer through a
 * DoneFunc, always from the dispatch pass, never from inside the call.
 *
 * The manager runs the dispatch pass: it hands each change to the
 * observers that registered with manager_add_observer(), frees what is
 * finished, and only then sends the answers.
 */
typedef struct Manager Manager;

typedef struct {
        /* An emulator appeared or changed (EMU_DIRTY_* bits). */
        void (*emulator_changed)(void *userdata, Emulator *e, unsigned mask);
        /* An emulator is about to be freed; it can still be looked up. */
        void (*emulator_removed)(void *userdata, Emulator *e);
        /* A VM connected, was lost or was removed (vm->removed). */
        void (*vm_changed)(void *userdata, Vm *vm);
        /* An event for the VM's QMP clients. */
        void (*event)(void *userdata, Vm *vm, const char *name, json_t *data);
        /* End of a pass: everything above has been said. */
        void (*flushed)(void *userdata);
} ManagerObserver;

struct Manager {
        EmudConfig *cfg;
        EmuCatalog *catalog;    /* the kinds, replaced whole by a reload */
        GHashTable *kinds;      /* the catalog's: name → EmuKind */
        GHashTable *vms;        /* name → Vm */
        GHashTable *emulators;  /* id → Emulator */
        Dispatch *dispatch;
        GArray *observers;      /* Observer */
        struct LvDomains *libvirt; /* libvirt's domains (libvirt-domains.c), or NULL */
        bool shutting_down;
        bool leave_emulators;   /* shutting down without stopping them */
        void (*idle_cb)(Manager *m, void *userdata); /* shutting down, no emulator left */
        void *idle_userdata;
};

/* Takes over catalog. */
Manager *manager_new(EmudConfig *cfg, EmuCatalog *catalog);
/*
 * Read the kinds again (descriptors, interop backends, availability). On an
 * error nothing changes. Running emulators keep the kind they started with.
 */
bool manager_reload_kinds(Manager *m, GError **error);
void manager_free(Manager *m);

/* Every callback may be NULL. Observers are called in the order they were added. */
void manager_add_observer(Manager *m, const ManagerObserver *ops, void *userdata);

/*
 * qmp_paths: QEMU's QMP monitor that emud uses, then optionally more
 * monitors of the same QEMU that the VM's QMP proxy spreads its clients over
 * (NULL-terminated).
 */
void manager_add_vm(Manager *m, const char *name, const char *const *qmp_paths, DoneFunc done,
                    void *userdata);
/* A defined VM's prepared emulators are stopped first; a connected VM must have none. */
void manager_remove_vm(Manager *m, const char *name, DoneFunc done, void *userdata);
/*
 * The VM's QEMU is gone for good (a libvirt domain stopped): its emulators
 * stop without unplugging, and the VM goes with the last of them. done may
 * be NULL.
 */
void manager_drop_vm(Manager *m, Vm *vm, DoneFunc done, void *userdata);
/* The emulators of vm (borrowed); g_ptr_array_unref() the array. */
GPtrArray *manager_vm_emulators(Manager *m, Vm *vm);
void manager_spawn(Manager *m, const char *vm, const char *kind, const char *id,
                   GHashTable *options, DoneFunc done, void *userdata);
/*
 * Cold-plug: start an emulator for a VM whose QEMU is not running yet (the
 * VM is defined if emud does not know it). qmp_paths (may be NULL) are where
 * that QEMU's monitors will be; emud connects when the first accepts.
 */
void manager_prepare(Manager *m, const char *vm, const char *const *qmp_paths,
                     const char *kind, const char *id, GHashTable *options, DoneFunc done,
                     void *userdata);
void manager_kill(Manager *m, const char *vm, const char *id, DoneFunc done, void *userdata);
/* A command on an emulator's own QMP monitor; vm may be NULL (any VM). */
bool manager_emulator_execute(Manager *m, const char *vm, const char *id, const char *command,
                              json_t *args, EmuExecFunc done, void *userdata, GError **error);
/* Lookups for the front ends; vm may be NULL. Set error when not found. */
Emulator *manager_find_emulator(Manager *m, const char *vm, const char *id, GError **error);
Vm *manager_find_vm(Manager *m, const char *name, GError **error);

/* Sorted, for listings. g_ptr_array_unref() them; the elements are borrowed. */
GPtrArray *manager_sorted_emulators(Manager *m);
GPtrArray *manager_sorted_vms(Manager *m);

/*
 * Stop serving. With stop_emulators, unplug and stop every emulator first;
 * otherwise leave them running for the next emud. m->idle_cb runs when done.
 */
void manager_shutdown(Manager *m, bool stop_emulators);

/* Register what adoption (adopt.c) made. */
void manager_register_vm(Manager *m, Vm *vm);
void manager_register_emulator(Manager *m, Emulator *e);
Vm *manager_new_vm(Manager *m, const char *name, const char *qmp_path,
                   const char *const *extra_paths);

/* Status line for sd_notify STATUS=. */
char *manager_status(Manager *m);
