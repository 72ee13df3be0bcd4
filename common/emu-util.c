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

guint emu_fd_watch(int fd, GIOCondition cond, GUnixFDSourceFunc func, void *userdata)
{
        GSource *source = g_unix_fd_source_new(fd, cond);
        g_source_set_callback(source, (GSourceFunc)(void (*)(void))func, userdata, NULL);
        g_source_set_can_recurse(source, TRUE);
        guint id = g_source_attach(source, NULL);
        g_source_unref(source);
        return id;
}
