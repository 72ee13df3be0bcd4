/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-sandbox: where the time between "spawn" and "QMP greeting" goes for a
 * confined qemu-storage-daemon, step by step, through the library emud uses.
 *
 * Each round runs every variant once, interleaved so that drift hits them
 * alike: a bare fork/exec (no sandbox), then the sandbox with more and more
 * steps switched on, up to all of them, as emud runs vhost-user-blk. For each
 * it times three phases:
 *   plan    emu_sandbox_new(): mounts, ids, cgroup leaf, compiling the filter;
 *   launch  emu_launch_full(): clone3 to execve, the child applying the plan;
 *   greet   from there to the emulator's QMP greeting on its monitor socket,
 *           with the seccomp listener serviced as emud does.
 * Medians over the rounds; root only (namespaces, cgroups). Not run by meson test.
 *
 *   bench-sandbox [ROUNDS]
 */
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emu-socket.h"
#include "emu-util.h"
#include "launcher.h"
#include "seccomp-watch.h"

#define QSD "/usr/bin/qemu-storage-daemon"

typedef struct {
        const char *name;
        unsigned steps; /* 0: no sandbox at all */
} Variant;

static const Variant variants[] = {
        { "bare fork/exec", 0 },
        { "+namespaces", EMU_SANDBOX_NAMESPACES },
        { "+mounts", EMU_SANDBOX_NAMESPACES | EMU_SANDBOX_MOUNTS },
        { "+rlimits,cgroup,ids,caps", EMU_SANDBOX_ALL & ~EMU_SANDBOX_SECCOMP },
        { "+seccomp (= emud)", EMU_SANDBOX_ALL },
};
#define N_VARIANTS G_N_ELEMENTS(variants)
enum { PLAN, LAUNCH, GREET, N_PHASES };

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static gboolean on_readable(int fd, GIOCondition cond, gpointer userdata)
{
        *(gboolean *)userdata = TRUE;
        return G_SOURCE_REMOVE;
}

static void on_report(const EmuSeccompReport *r, void *userdata)
{
        fprintf(stderr, "bench-sandbox: seccomp reported %s\n", r->call);
}

/* A listening socket for the export, as emud holds one; its path is not needed after. */
static int listen_socket(const char *path)
{
        int fd = emu_unix_listen(path, 1);
        unlink(path);
        return fd < 0 ? -1 : fd;
}

/* Waits for the greeting on fd, serving the seccomp listener meanwhile as emud does. */
static bool wait_greeting(int fd)
{
        gboolean readable = FALSE;
        char buf[256];
        g_unix_fd_add(fd, G_IO_IN | G_IO_HUP, on_readable, &readable);
        while (!readable)
                g_main_context_iteration(NULL, TRUE);
        return read(fd, buf, sizeof(buf)) > 6 && strncmp(buf, "{\"QMP\"", 6) == 0;
}

/* One spawn of one variant; false on any failure (printed). */
static bool one(const Variant *v, const EmuPolicy *policy, const char *image, unsigned n,
                double ret[N_PHASES])
{
        int mon[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, mon) < 0)
                return false;
        emu_autofd ours = mon[0], theirs = mon[1];
        g_autofree char *sock = g_strdup_printf("%s.sock", image);
        emu_autofd listen_fd = listen_socket(sock);
        if (listen_fd < 0)
                return false;
        g_autofree char *file = g_strdup_printf("driver=file,node-name=file0,filename=%s,"
                                                "read-only=off", image);
        char *argv[] = { QSD, "--chardev", "socket,id=mon0,fd=3", "--monitor", "chardev=mon0",
                         "--blockdev", file, "--blockdev",
                         "driver=raw,node-name=disk0,file=file0,read-only=off", "--export",
                         "type=vhost-user-blk,id=export0,node-name=disk0,writable=on,"
                         "num-queues=1,addr.type=fd,addr.str=4",
                         NULL };
        int fds[] = { theirs, listen_fd };
        EmuSandboxBind image_bind = { .path = image, .writable = true };
        g_autofree char *leaf = g_strdup_printf("bench.%d.%u", (int)getpid(), n);
        EmuSandboxConfig cfg = {
                .steps = v->steps, .binary = QSD, .binds = &image_bind, .n_binds = 1,
                .cgroup_name = leaf, .memory_max = 1 << 30, .pids_max = 128,
                .uid = EMU_SANDBOX_ID_DEFAULT, .gid = EMU_SANDBOX_ID_DEFAULT,
                .policy = policy, .mode = EMU_SECCOMP_ENFORCE,
        };
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuSandbox) sb = NULL;
        EmuLaunched l = { .pid = -1, .pidfd = -1, .listener = -1 };

        double t0 = now_ms();
        if (v->steps && !(sb = emu_sandbox_new(&cfg, &err))) {
                fprintf(stderr, "bench-sandbox: %s: %s\n", v->name, err->message);
                return false;
        }
        double t1 = now_ms();
        EmuLaunchSpec spec = { .argv = argv, .fds = fds, .n_fds = 2, .output_fd = 2,
                               .sandbox = sb };
        if (!emu_launch_full(&spec, &l, &err)) {
                fprintf(stderr, "bench-sandbox: %s: %s\n", v->name, err->message);
                return false;
        }
        double t2 = now_ms();
        theirs = emu_close(theirs);
        g_autoptr(EmuSeccompWatch) w = NULL;
        if (l.listener >= 0)
                w = emu_seccomp_watch_new(l.listener, EMU_SECCOMP_ENFORCE, l.pidfd, on_report,
                                          NULL);
        bool ok = wait_greeting(ours);
        double t3 = now_ms();
        if (ok) {
                ret[PLAN] = t1 - t0;
                ret[LAUNCH] = t2 - t1;
                ret[GREET] = t3 - t2;
        } else {
                fprintf(stderr, "bench-sandbox: %s: no QMP greeting\n", v->name);
        }
        pidfd_send_signal(l.pidfd, SIGKILL, NULL, 0);
        while (waitpid(l.pid, NULL, 0) < 0 && errno == EINTR)
                ;
        emu_close(l.pidfd);
        return ok;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
        qsort(v, n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
        unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 20;
        const char *dirs[] = { EMUD_POLICY_SRCDIR, NULL };
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPolicy) policy = emu_policy_load("vhost-user-blk", dirs, &err);
        if (!policy || rounds == 0) {
                fprintf(stderr, "bench-sandbox: %s\n", err ? err->message : "bad ROUNDS");
                return 1;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "bench-sandbox: needs root (namespaces, cgroups)\n");
                return 77;
        }
        char image[] = "/tmp/bench-sandbox-XXXXXX";
        int fd = mkstemp(image);
        if (fd < 0 || ftruncate(fd, 64 << 20) < 0 || fchmod(fd, 0666) < 0)
                return 1;
        close(fd);

        g_autofree double *t = g_new0(double, N_VARIANTS * N_PHASES * rounds);
#define T(v, p, r) t[((v) * N_PHASES + (p)) * rounds + (r)]
        int rc = 0;
        for (unsigned r = 0; r < rounds && rc == 0; r++)
                for (unsigned v = 0; v < N_VARIANTS && rc == 0; v++) {
                        double ph[N_PHASES];
                        if (!one(&variants[v], policy, image, r * N_VARIANTS + v, ph))
                                rc = 1;
                        for (unsigned p = 0; p < N_PHASES; p++)
                                T(v, p, r) = rc ? 0 : ph[p];
                }
        unlink(image);
        if (rc)
                return rc;
        printf("qemu-storage-daemon spawn -> QMP greeting, median of %u rounds (ms)\n", rounds);
        printf("  %-26s %7s %7s %7s %7s\n", "", "plan", "launch", "greet", "total");
        for (unsigned v = 0; v < N_VARIANTS; v++) {
                g_autofree double *sum = g_new(double, rounds);
                double med[N_PHASES];
                for (unsigned r = 0; r < rounds; r++)
                        sum[r] = T(v, PLAN, r) + T(v, LAUNCH, r) + T(v, GREET, r);
                for (unsigned p = 0; p < N_PHASES; p++)
                        med[p] = median(&T(v, p, 0), rounds);
                printf("  %-26s %7.2f %7.2f %7.2f %7.2f\n", variants[v].name, med[PLAN],
                       med[LAUNCH], med[GREET], median(sum, rounds));
        }
        return 0;
}
