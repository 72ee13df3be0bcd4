/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-seccomp: what emud's seccomp filter adds to a cheap allowed syscall.
 * getppid() through syscall(), in a tight loop, with no filter, with the
 * vhost-user-blk policy as emud compiles it (binary tree), and with the same
 * policy compiled as a linear list. Each variant runs in a forked child so
 * the filters do not stack. Not run by meson test.
 *
 *   bench-seccomp [POLICY_DIR [ITERATIONS]]
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "policy-compile.h"
#include "policy.h"

static double now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* In a child: load prog (if any), time the loop, best of 20 rounds, send ns/call back. */
static double run(const struct sock_fprog *prog, long iterations)
{
        int p[2];
        if (pipe(p) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                double best = 1e18;
                if (prog && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                             syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0))
                        _exit(1);
                for (int round = 0; round < 20; round++) {
                        double t0 = now_ns();
                        for (long i = 0; i < iterations; i++)
                                syscall(SYS_getppid);
                        double dt = (now_ns() - t0) / (double)iterations;
                        if (dt < best)
                                best = dt;
                }
                if (write(p[1], &best, sizeof(best)) != sizeof(best))
                        _exit(1);
                _exit(0);
        }
        close(p[1]);
        double ns = -1;
        if (read(p[0], &ns, sizeof(ns)) != sizeof(ns))
                ns = -1;
        close(p[0]);
        waitpid(pid, NULL, 0);
        return ns;
}

int main(int argc, char **argv)
{
        const char *dir = argc > 1 ? argv[1] : EMUD_POLICY_SRCDIR;
        long iterations = argc > 2 ? atol(argv[2]) : 500000;
        const char *dirs[] = { dir, NULL };
        g_autoptr(GError) err = NULL;
        g_autoptr(EmuPolicy) p = emu_policy_load("vhost-user-blk", dirs, &err);
        if (!p) {
                fprintf(stderr, "bench-seccomp: %s\n", err->message);
                return 1;
        }
        g_autoptr(EmuBpf) tree = NULL, linear = NULL;
        if (emu_policy_compile(p, EMU_COMPILE_NOTIFY, &tree) < 0 ||
            emu_policy_compile(p, EMU_COMPILE_NOTIFY | EMU_COMPILE_NO_OPTIMIZE, &linear) < 0) {
                fprintf(stderr, "bench-seccomp: cannot compile the policy\n");
                return 1;
        }
        double none = run(NULL, iterations);
        double t = run(&tree->prog, iterations);
        double l = run(&linear->prog, iterations);
        printf("getppid() via syscall(), best of 20 rounds of %ld calls\n", iterations);
        printf("  no filter                         %7.1f ns/call\n", none);
        printf("  qsd policy, tree   (%4u insns)    %7.1f ns/call  (+%.1f ns)\n", tree->prog.len,
               t, t - none);
        printf("  qsd policy, linear (%4u insns)    %7.1f ns/call  (+%.1f ns)\n",
               linear->prog.len, l, l - none);
        return none < 0 || t < 0 || l < 0;
}
