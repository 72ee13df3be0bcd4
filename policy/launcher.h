/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sandbox.h"

/*
 * The one place where emud forks and execs an emulator. The parent computes
 * everything; the child only moves fds into place, resets signal state and
 * execs, so nothing unsafe runs between fork and exec. The sandbox steps of
 * policy/ slot in here.
 */
typedef struct {
        char *const *argv;   /* argv[0] is the absolute path that is executed */
        const int *fds;      /* fds[i] becomes fd 3 + i in the child */
        size_t n_fds;
        int output_fd;       /* becomes the child's stdout and stderr; -1 for /dev/null */
        const EmuSandbox *sandbox; /* NULL: no confinement, exactly as before sandboxes */
} EmuLaunchSpec;

/*
 * Start the process in a session of its own with an empty environment and
 * only the listed fds. Returns 0 with the pid and a pidfd (O_CLOEXEC), or a
 * negative errno; a failed execve is reported here with its errno, and the
 * child has been reaped.
 */
int emu_launch(const EmuLaunchSpec *spec, pid_t *ret_pid, int *ret_pidfd);

typedef struct {
        pid_t pid;
        int pidfd;           /* O_CLOEXEC */
        int listener;        /* seccomp notify listener, O_CLOEXEC; -1 without one */
} EmuLaunched;

/*
 * emu_launch() with the sandbox of spec applied in the child, in the order of
 * DESIGN.md. On success the process has exec'd the binary with its seccomp
 * filter loaded; with emu_sandbox_has_listener() ret->listener is the fd to
 * give emu_seccomp_watch_new(), and until something watches it, calls outside
 * the policy block. On failure nothing is left running and no fd is left
 * open, and error names the step that failed ("mounts: /usr: ...").
 */
bool emu_launch_full(const EmuLaunchSpec *spec, EmuLaunched *ret, GError **error);
