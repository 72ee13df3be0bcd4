/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Small helpers shared by every layer: fd ownership, cleanup attributes for
 * the library types we use, and errno-preserving close.
 *
 * GLib 2.74 (Debian 12) has no g_autofd, so fds get their own cleanup type.
 */

#include <errno.h>
#include <stdbool.h>
#include <glib.h>
#include <glib-unix.h>
#include <jansson.h>
#include <unistd.h>

/* Close an fd, keep errno, and return -1 so callers can write fd = emu_close(fd). */
static inline int emu_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}

static inline void emu_closep(int *fd)
{
        if (fd)
                *fd = emu_close(*fd);
}

/* An fd that is closed when it goes out of scope; hand it on with emu_steal_fd(). */
#define emu_autofd __attribute__((cleanup(emu_closep))) int

static inline int emu_steal_fd(int *fd)
{
        int r = *fd;
        *fd = -1;
        return r;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, json_decref)

/* Free a pointer that jansson's json_dumps() returned. */
static inline void emu_freep(char **p)
{
        free(*p);
}
#define emu_autofree_c __attribute__((cleanup(emu_freep))) char

/* Set an fd non-blocking; returns 0 or -errno. */
int emu_fd_nonblock(int fd, bool nonblock);

/* Read /proc/self/fd and return how many fds are open; for leak checks in tests. */
int emu_count_open_fds(void);

/* Remove path, and what is under it if it is a directory, following no symlink; 0 or -errno. */
int emu_remove_tree(const char *path);

/*
 * Watch an fd on the default main context, like g_unix_fd_add(), but with a
 * source that may recurse. GLib "blocks" a non-recursive source while its
 * callback runs by removing its fd from the context's poll set and adding it
 * back afterwards, and each of those wakes the context through its eventfd:
 * two writes, a read and an extra poll() per dispatch. emud never iterates
 * the main loop from a callback, so its busy fds (QMP connections) skip that.
 */
guint emu_fd_watch(int fd, GIOCondition cond, GUnixFDSourceFunc func, void *userdata);
