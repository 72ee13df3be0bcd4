/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emu-util: fd helpers that the other layers share.
 */
#include <dirent.h>
#include <fcntl.h>

#include "emu-util.h"

int emu_fd_nonblock(int fd, bool nonblock)
{
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        int nflags = nonblock ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
        if (nflags != flags && fcntl(fd, F_SETFL, nflags) < 0)
                return -errno;
        return 0;
}

int emu_count_open_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return -errno;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the directory's own fd */
}
