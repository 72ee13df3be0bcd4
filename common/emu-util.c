/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emu-util: fd helpers that the other layers share.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

int emu_remove_tree(const char *path)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (S_ISDIR(st.st_mode)) {
                /* lstat: a symlink inside is removed, never followed. */
                g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
                const char *entry;
                while (d && (entry = g_dir_read_name(d))) {
                        g_autofree char *child = g_build_filename(path, entry, NULL);
                        int r = emu_remove_tree(child);
                        if (r < 0)
                                return r;
                }
                return rmdir(path) < 0 && errno != ENOENT ? -errno : 0;
        }
        return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}
