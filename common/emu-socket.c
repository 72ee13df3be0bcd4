/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emu-socket: unix stream sockets for the daemon, the QMP client, the
 * benchmarks and the tests, so that the address rules live in one place.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "emu-socket.h"
#include "emu-util.h"

int emu_unix_addr(struct sockaddr_un *sa, const char *path)
{
        if (strlen(path) >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        strcpy(sa->sun_path, path);
        return 0;
}

int emu_unix_connect(const char *path)
{
        struct sockaddr_un sa;
        int r = emu_unix_addr(&sa, path);
        if (r < 0)
                return r;
        emu_autofd fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        return emu_steal_fd(&fd);
}

int emu_unix_listen(const char *path, int backlog)
{
        struct sockaddr_un sa;
        int r = emu_unix_addr(&sa, path);
        if (r < 0)
                return r;
        emu_autofd fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || (unlink(path) < 0 && errno != ENOENT) ||
            bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0)
                return -errno;
        return emu_steal_fd(&fd);
}
