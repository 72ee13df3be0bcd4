/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox-probe: looks at the sandbox from the inside and reports what it
 * sees as "key=value" lines on fd 3, then waits for EOF on fd 4 so the test
 * can look at it from the host side while it is alive. Plain libc only, so
 * the minimal root (/usr) is all it needs.
 *
 * Usage: sandbox-probe IMAGE [kill]   ("kill": end with a socket(AF_INET)
 * under a kill policy, to be stopped by the supervisor)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static FILE *out;

static void status_field(const char *key)
{
        char line[256];
        FILE *f = fopen("/proc/self/status", "re");
        size_t n = strlen(key);

        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, key, n) == 0 && line[n] == ':') {
                        char *v = line + n + 1;
                        v += strspn(v, " \t");
                        v[strcspn(v, "\n")] = '\0';
                        fprintf(out, "%s=%s\n", key, v);
                }
        if (f)
                fclose(f);
}

static void result(const char *key, int r)
{
        fprintf(out, "%s=%s\n", key, r < 0 ? strerror(errno) : "ok");
}

int main(int argc, char **argv)
{
        out = fdopen(3, "w");
        if (!out || argc < 2)
                return 2;
        setvbuf(out, NULL, _IOLBF, 0);

        if (argc > 2 && strcmp(argv[2], "kill") == 0) {
                int fd = open(argv[1], O_RDWR | O_CLOEXEC);
                result("image_write", fd);
                fprintf(out, "about_to_die=1\n");
                socket(AF_INET6, SOCK_DGRAM, 0);
                fprintf(out, "survived=1\n");
                fprintf(out, "done=1\n");
                return 0;
        }
        status_field("CapEff");
        status_field("CapBnd");
        status_field("NoNewPrivs");
        status_field("Seccomp");
        fprintf(out, "uid=%d\n", (int)getuid());
        fprintf(out, "pid=%d\n", (int)getpid());
        result("shadow", access("/etc/shadow", F_OK));
        result("root", access("/root", F_OK));
        result("etc", access("/etc", F_OK));

        int procs = 0;
        DIR *d = opendir("/proc");
        for (struct dirent *e; d && (e = readdir(d));)
                procs += e->d_name[0] >= '0' && e->d_name[0] <= '9';
        if (d)
                closedir(d);
        fprintf(out, "procs=%d\n", procs);

        int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
        result("image_read", fd);
        if (fd >= 0)
                close(fd);
        fd = open(argv[1], O_RDWR | O_CLOEXEC);
        result("image_write", fd);
        if (fd >= 0)
                close(fd);
        result("devnull", (fd = open("/dev/null", O_WRONLY | O_CLOEXEC)));
        if (fd >= 0)
                close(fd);

        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        result("socket_unix", s);
        if (s >= 0)
                close(s);
        s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        result("socket_inet", s);
        if (s >= 0)
                close(s);

        char *const exec_argv[] = { "/usr/bin/true", NULL };
        result("execve", execv(exec_argv[0], exec_argv));

        fprintf(out, "done=1\n");
        fclose(out);

        char b;
        while (read(4, &b, 1) > 0)
                ;
        return 0;
}
