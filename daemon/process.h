/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "launcher.h"

/*
 * One emulator process as emud watches it: launched by emud (its child, so
 * the exit status is known) or adopted after an emud restart (not its child:
 * only the fact of the exit is known). Either way the process is watched
 * through a pidfd in the main loop, and its output is read line by line.
 */
typedef struct {
        bool known;     /* false for an adopted process: its parent reaped it */
        int code;       /* exit status, when it exited */
        int signal;     /* terminating signal, or 0 */
        bool core;      /* dumped core */
        char *text;     /* "exited with status 1", "killed by signal SIGKILL", ... */
} EmuExit;

typedef struct {
        void (*output)(void *userdata, const char *line);
        void (*exited)(void *userdata, const EmuExit *exit);
} EmuProcOps;

typedef struct {
        pid_t pid;
        int pidfd;
        guint64 start_time;     /* /proc/PID/stat field 22: with the pid, the identity */
        bool adopted;
        guint pid_watch;
        int output_fd;
        guint output_watch;
        GString *line;
        char *last_output;
        const EmuProcOps *ops;
        void *userdata;
} EmuProc;

void emu_proc_init(EmuProc *p, const EmuProcOps *ops, void *userdata);
void emu_proc_deinit(EmuProc *p);

/*
 * Start the process (confined when spec->sandbox is set). *ret_listener is
 * the seccomp notification fd to watch, or -1.
 */
bool emu_proc_launch(EmuProc *p, const EmuLaunchSpec *spec, int *ret_listener, GError **error);

/*
 * Take over a process emud did not start (or started in a former life):
 * only if pid still names the process that started at start_time. 0, or
 * -ESRCH when it is gone or the pid now names another process.
 */
int emu_proc_adopt(EmuProc *p, pid_t pid, guint64 start_time);

bool emu_proc_alive(const EmuProc *p);
void emu_proc_signal(EmuProc *p, int sig);

/* Duplicate fd number target_fd of the process into emud (pidfd_getfd). */
int emu_proc_get_fd(EmuProc *p, int target_fd);

/* The start time of pid, 0 if it cannot be read. */
guint64 emu_proc_read_start_time(pid_t pid);

void emu_exit_clear(EmuExit *e);
