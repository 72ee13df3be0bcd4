/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * policy-names: the small table of constant names shared by the policy
 * parser (name → value) and the seccomp supervisor's reports (value → name).
 *
 * The table is deliberately short and grouped: a value is only translated
 * back to a name where the syscall and argument say which group it belongs
 * to, because the same number means AF_INET in one place and O_RDWR in
 * another.
 */
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <termios.h>
#include <linux/fs.h>
#include <sys/prctl.h>
#include <glib.h>

#include "policy-names.h"

typedef enum {
        G_NONE,
        G_AF,       /* socket domains */
        G_SOCK,     /* socket types */
        G_IOCTL,    /* ioctl requests */
        G_PROT,
        G_OPEN,
        G_MISC,
} Group;

typedef struct {
        const char *name;
        uint64_t value;
        Group group;
} Constant;

#define C(n, g) { #n, (uint64_t)(n), g }
static const Constant constants[] = {
        C(AF_UNSPEC, G_AF), C(AF_UNIX, G_AF), C(AF_LOCAL, G_AF), C(AF_INET, G_AF),
        C(AF_INET6, G_AF), C(AF_NETLINK, G_AF), C(AF_PACKET, G_AF), C(AF_VSOCK, G_AF),
        C(AF_ALG, G_AF), C(AF_BLUETOOTH, G_AF),
        C(SOCK_STREAM, G_SOCK), C(SOCK_DGRAM, G_SOCK), C(SOCK_RAW, G_SOCK),
        C(SOCK_SEQPACKET, G_SOCK), C(SOCK_NONBLOCK, G_MISC), C(SOCK_CLOEXEC, G_MISC),
        C(FIONBIO, G_IOCTL), C(FIOCLEX, G_IOCTL), C(FIONCLEX, G_IOCTL), C(FIONREAD, G_IOCTL),
        C(TCGETS, G_IOCTL), C(TCSETS, G_IOCTL), C(TIOCGWINSZ, G_IOCTL), C(TIOCSTI, G_IOCTL),
        C(TIOCGPGRP, G_IOCTL), C(BLKGETSIZE64, G_IOCTL), C(BLKSSZGET, G_IOCTL),
        C(BLKBSZGET, G_IOCTL), C(BLKPBSZGET, G_IOCTL), C(BLKDISCARD, G_IOCTL),
        C(BLKZEROOUT, G_IOCTL), C(BLKIOMIN, G_IOCTL), C(BLKIOOPT, G_IOCTL),
        C(BLKROGET, G_IOCTL), C(BLKFLSBUF, G_IOCTL),
        C(PR_SET_NAME, G_MISC), C(PR_GET_NAME, G_MISC), C(PR_SET_TIMERSLACK, G_MISC),
        C(PR_SET_PDEATHSIG, G_MISC), C(PR_GET_DUMPABLE, G_MISC), C(PR_SET_VMA, G_MISC),
        C(PROT_NONE, G_PROT), C(PROT_READ, G_PROT), C(PROT_WRITE, G_PROT), C(PROT_EXEC, G_PROT),
        C(O_RDONLY, G_OPEN), C(O_WRONLY, G_OPEN), C(O_RDWR, G_OPEN), C(O_ACCMODE, G_OPEN),
        C(O_CREAT, G_OPEN), C(O_EXCL, G_OPEN), C(O_TRUNC, G_OPEN), C(O_APPEND, G_OPEN),
        C(O_NONBLOCK, G_OPEN), C(O_DIRECT, G_OPEN), C(O_CLOEXEC, G_OPEN),
        C(O_DIRECTORY, G_OPEN), C(O_NOFOLLOW, G_OPEN), C(O_PATH, G_OPEN), C(O_SYNC, G_OPEN),
        C(O_DSYNC, G_OPEN), C(O_LARGEFILE, G_OPEN), C(O_TMPFILE, G_OPEN),
        C(MAP_SHARED, G_MISC), C(MAP_PRIVATE, G_MISC), C(MAP_ANONYMOUS, G_MISC),
        C(MAP_FIXED, G_MISC),
        C(F_GETFD, G_MISC), C(F_SETFD, G_MISC), C(F_GETFL, G_MISC), C(F_SETFL, G_MISC),
        C(F_DUPFD, G_MISC), C(F_DUPFD_CLOEXEC, G_MISC), C(F_SETLK, G_MISC), C(F_GETLK, G_MISC),
        C(F_OFD_SETLK, G_MISC), C(F_OFD_GETLK, G_MISC), C(F_SETOWN, G_MISC),
        C(CLONE_VM, G_MISC), C(CLONE_FS, G_MISC), C(CLONE_FILES, G_MISC),
        C(CLONE_SIGHAND, G_MISC), C(CLONE_THREAD, G_MISC), C(CLONE_SYSVSEM, G_MISC),
        C(CLONE_SETTLS, G_MISC), C(CLONE_PARENT_SETTID, G_MISC),
        C(CLONE_CHILD_CLEARTID, G_MISC), C(CLONE_NEWUSER, G_MISC), C(CLONE_NEWNS, G_MISC),
        C(SIGKILL, G_MISC), C(SIGTERM, G_MISC), C(SIGINT, G_MISC), C(SIGHUP, G_MISC),
        C(SIGUSR1, G_MISC), C(SIGUSR2, G_MISC), C(SIGCHLD, G_MISC), C(SIGPIPE, G_MISC),
        C(SIG_BLOCK, G_MISC), C(SIG_UNBLOCK, G_MISC), C(SIG_SETMASK, G_MISC),
        C(MADV_DONTNEED, G_MISC), C(MADV_DONTDUMP, G_MISC), C(MADV_HUGEPAGE, G_MISC),
};
#undef C

bool emu_constant_lookup(const char *name, uint64_t *ret_value)
{
        for (size_t i = 0; i < G_N_ELEMENTS(constants); i++)
                if (strcmp(constants[i].name, name) == 0) {
                        *ret_value = constants[i].value;
                        return true;
                }
        return false;
}

static const char *name_of(Group g, uint64_t v)
{
        for (size_t i = 0; i < G_N_ELEMENTS(constants); i++)
                if (constants[i].group == g && constants[i].value == v)
                        return constants[i].name;
        return NULL;
}

static void append_value(GString *s, Group g, uint64_t v)
{
        const char *n = g == G_NONE ? NULL : name_of(g, v);

        if (n)
                g_string_append(s, n);
        else if (v < 4096)
                g_string_append_printf(s, "%" G_GUINT64_FORMAT, v);
        else
                g_string_append_printf(s, "0x%" G_GINT64_MODIFIER "x", v);
}

/* A socket type is a base type with SOCK_NONBLOCK / SOCK_CLOEXEC or'ed in. */
static void append_socktype(GString *s, uint64_t v)
{
        append_value(s, G_SOCK, v & 0xf);
        if (v & SOCK_NONBLOCK)
                g_string_append(s, "|SOCK_NONBLOCK");
        if (v & SOCK_CLOEXEC)
                g_string_append(s, "|SOCK_CLOEXEC");
        if (v & ~(uint64_t)(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC))
                g_string_append_printf(s, "|0x%" G_GINT64_MODIFIER "x",
                                       v & ~(uint64_t)(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC));
}

typedef struct {
        const char *name;
        int n_args;
        Group groups[6];
} Shape;

/* How many arguments the common calls take, and which group names each one. */
static const Shape shapes[] = {
        { "socket", 3, { G_AF, G_SOCK, G_NONE } },
        { "socketpair", 4, { G_AF, G_SOCK, G_NONE, G_NONE } },
        { "ioctl", 3, { G_NONE, G_IOCTL, G_NONE } },
        { "mmap", 6, { G_NONE, G_NONE, G_PROT, G_NONE, G_NONE, G_NONE } },
        { "mprotect", 3, { G_NONE, G_NONE, G_PROT } },
        { "openat", 4, { G_NONE, G_NONE, G_OPEN, G_NONE } },
        { "open", 3, { G_NONE, G_OPEN, G_NONE } },
        { "execve", 3, { G_NONE } },
        { "execveat", 5, { G_NONE } },
        { "kill", 2, { G_NONE } },
        { "ptrace", 4, { G_NONE } },
        { "mount", 5, { G_NONE } },
        { "connect", 3, { G_NONE } },
        { "bind", 3, { G_NONE } },
        { "getppid", 0, { G_NONE } },
        { "getpid", 0, { G_NONE } },
        { "fork", 0, { G_NONE } },
        { "vfork", 0, { G_NONE } },
};

char *emu_syscall_format(int nr, const char *name, const uint64_t args[6])
{
        GString *s = g_string_new(name ? name : NULL);
        const Shape *shape = NULL;

        if (!name)
                g_string_printf(s, "syscall_%d", nr);
        for (size_t i = 0; name && i < G_N_ELEMENTS(shapes); i++)
                if (strcmp(shapes[i].name, name) == 0)
                        shape = &shapes[i];
        g_string_append_c(s, '(');
        int n = shape ? shape->n_args : 6;
        for (int i = 0; i < n; i++) {
                if (i)
                        g_string_append(s, ", ");
                Group g = shape ? shape->groups[i] : G_NONE;
                if (g == G_SOCK)
                        append_socktype(s, args[i]);
                else if (g == G_PROT || g == G_OPEN)
                        g_string_append_printf(s, "0x%" G_GINT64_MODIFIER "x", args[i]);
                else
                        append_value(s, g, args[i]);
        }
        g_string_append_c(s, ')');
        return g_string_free(s, FALSE);
}
