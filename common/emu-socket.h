/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

/*
 * Unix stream sockets, the one way every layer makes them: close-on-exec,
 * a path that does not fit sun_path is -ENAMETOOLONG (never truncated).
 */

/* Fill *sa with path; -ENAMETOOLONG when it does not fit. */
int emu_unix_addr(struct sockaddr_un *sa, const char *path);

/* Connect to path; the fd, or -errno. */
int emu_unix_connect(const char *path);

/* Replace whatever is at path with a listening socket; the fd, or -errno. */
int emu_unix_listen(const char *path, int backlog);
