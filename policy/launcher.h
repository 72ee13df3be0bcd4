/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

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
} EmuLaunchSpec;

/*
 * Start the process in a session of its own with an empty environment and
 * only the listed fds. Returns 0 with the pid and a pidfd (O_CLOEXEC), or a
 * negative errno; a failed execve is reported here with its errno, and the
 * child has been reaped.
 */
int emu_launch(const EmuLaunchSpec *spec, pid_t *ret_pid, int *ret_pidfd);
