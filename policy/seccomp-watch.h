/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The seccomp supervisor: watches a SECCOMP_RET_USER_NOTIF listener from the
 * GLib main loop, names each syscall the filter did not allow, and answers
 * it according to the spawn's mode.
 */

typedef enum {
        EMU_SECCOMP_ENFORCE, /* answer with an error; stop the process when the policy says kill */
        EMU_SECCOMP_LOG,     /* let the syscall run, report it */
        EMU_SECCOMP_LEARN,   /* let the syscall run, record it for emu_policy_dump_learned() */
} EmuSeccompMode;

const char *emu_seccomp_mode_name(EmuSeccompMode mode);
/* "enforce", "log" or "learn"; false for anything else. */
gboolean emu_seccomp_mode_from_name(const char *name, EmuSeccompMode *ret_mode);

typedef enum {
        EMU_SECCOMP_DENIED_KILLED, /* answered with an error and the process was killed */
        EMU_SECCOMP_DENIED,        /* answered with an error, the process goes on */
        EMU_SECCOMP_ALLOWED,       /* log and learn: the syscall ran */
} EmuSeccompVerdict;

typedef struct {
        pid_t pid;               /* thread that made the call, in emud's pid namespace */
        int nr;
        const char *name;        /* "socket"; "syscall_NNN" when libseccomp has no name */
        uint64_t args[6];
        const char *call;        /* "socket(AF_INET, SOCK_STREAM, 0)" */
        EmuSeccompVerdict verdict;
        int error;               /* errno the call got when denied */
} EmuSeccompReport;

typedef void (*EmuSeccompReportFunc)(const EmuSeccompReport *report, void *userdata);

typedef struct EmuSeccompWatch EmuSeccompWatch;

/*
 * Take over listener_fd (closed by _free) and watch it from the thread-default
 * main context. With pidfd >= 0 (borrowed, must outlive the watch) enforce
 * mode kills the process itself; otherwise the callback's owner has to.
 * Denied calls get EPERM and the process is killed; see _set_deny().
 * Log mode reports each syscall once; learn mode reports each new one.
 */
EmuSeccompWatch *emu_seccomp_watch_new(int listener_fd, EmuSeccompMode mode, int pidfd,
                                       EmuSeccompReportFunc cb, void *userdata);
void emu_seccomp_watch_free(EmuSeccompWatch *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EmuSeccompWatch, emu_seccomp_watch_free)

/* The errno of denied calls and whether they stop the process; from the policy's @default. */
void emu_seccomp_watch_set_deny(EmuSeccompWatch *w, int error, gboolean kill);

/* Learn and log mode: the names seen so far (a set; owned by the watch). */
GHashTable *emu_seccomp_watch_seen(EmuSeccompWatch *w);

/* Number of notifications handled; for tests and statistics. */
guint64 emu_seccomp_watch_count(EmuSeccompWatch *w);
