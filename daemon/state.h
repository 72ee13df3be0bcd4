/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "manager.h"

/*
 * The state file, <runtime>/state.jsonl: what a restarted emud needs to take
 * over, one JSON object a line (VMs first, then emulators). One object a
 * line means a damaged line costs that entry only. It is rewritten
 * atomically (temporary file, rename; no fsync, it need not outlive the
 * machine) when its content changes, at the end of each dispatch pass: a
 * launch is on disk before any other event is handled.
 */
typedef struct {
        char *name;
        char *qmp;        /* NULL only for a defined VM */
        bool defined;     /* cold-plug: its QEMU had not started */
        char **qmp_extra; /* the proxy's further monitors; NULL-terminated, never NULL */
        bool libvirt;           /* a libvirt domain: libvirt says whether it runs */
} StateVm;

typedef struct {
        char *id;
        char *vm;
        char *kind;
        GHashTable *options;    /* name → value, as rendered into the plan */
        char *restart;
        pid_t pid;
        guint64 start_time;
        char *state;
        char *slot;
        unsigned restarts;
        char *seccomp;          /* enforce, log, learn */
        char *cgroup;           /* the cgroup leaf of the running process, if any */
} StateEmulator;

typedef struct {
        GPtrArray *vms;         /* StateVm */
        GPtrArray *emulators;   /* StateEmulator */
        GPtrArray *problems;    /* char*: lines that could not be used, and why */
} StateSnapshot;

/*
 * Register as the manager's observer, writing path at the end of each pass.
 * Free it after the manager, whose last pass writes what the next emud adopts.
 */
typedef struct StateFile StateFile;
StateFile *state_file_new(Manager *m, const char *path);
void state_file_free(StateFile *sf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StateFile, state_file_free)

/* Read the file; a missing file is an empty snapshot. Never NULL. */
StateSnapshot *state_load(const char *path);
void state_snapshot_free(StateSnapshot *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StateSnapshot, state_snapshot_free)

