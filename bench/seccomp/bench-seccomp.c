/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-seccomp: what emud's seccomp filter adds to a cheap allowed syscall.
 * getppid() through syscall(), in a tight loop, with no filter, with the
 * vhost-user-blk policy as emud compiles it for a sandbox (binary tree, with
 * the supervisor's user notification as the default), and with the same
 * policy compiled as a linear list. A one-instruction allow-all filter shows
 * what any filter costs at all (the kernel's syscall entry slow path and its
 * per-syscall allow cache, which then spares the program itself for a call
 * the policy allows whatever its arguments). Not run by meson test.
 *
 * A filter cannot be removed once loaded, so each measurement runs in a
 * forked child. Noise (another process, frequency changes, a migration) is
 * of the same order as the difference being measured, so:
 *   - everything runs pinned to one CPU;
 *   - one trial measures every variant back to back, in an order that
 *     rotates from trial to trial, each the best of a few short rounds;
 *   - the figure is the median over many trials of the per-trial difference
 *     against that trial's own no-filter time, with the spread (the 10th and
 *     90th percentiles) beside it, so drift between trials cancels out and
 *     a noisy run shows as a wide spread rather than a wrong number.
 *
 *   bench-seccomp [POLICY_DIR [ITERATIONS [TRIALS]]]
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "policy-compile.h"
#include "policy.h"

#define ROUNDS 5 /* per child: the best of these */

enum { NONE, ALLOW_ALL, TREE, LINEAR, N_VARIANTS };

static double now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* In a child: load prog (if any), time the loop, send the best ns/call back; -1 on failure. */
static double run(const struct sock_fprog *prog, long iterations)
{
        int p[2];
        if (pipe(p) < 0)
                return -1;
        pid_t pid = fork();
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return -1;
        }
        if (pid == 0) {
                double best = 1e18;
                if (prog && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                             syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0))
                        _exit(1);
                for (long i = 0; i < iterations / 10; i++) /* warm up caches and branches */
                        syscall(SYS_getppid);
                for (int round = 0; round < ROUNDS; round++) {
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
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        return ns;
}

/* The highest-numbered CPU we may run on, so that CPU 0's interrupts are less in the way. */
static int pin_to_one_cpu(void)
{
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof(set), &set) < 0)
                return -1;
        for (int cpu = CPU_SETSIZE - 1; cpu >= 0; cpu--) {
                if (!CPU_ISSET(cpu, &set))
                        continue;
                CPU_ZERO(&set);
                CPU_SET(cpu, &set);
                return sched_setaffinity(0, sizeof(set), &set) < 0 ? -1 : cpu;
        }
        return -1;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* Sorts v; the q-quantile by nearest rank. */
static double quantile(double *v, int n, double q)
{
        qsort(v, (size_t)n, sizeof(*v), cmp_double);
        int i = (int)(q * (n - 1) + 0.5);
        return v[i];
}

int main(int argc, char **argv)
{
        const char *dir = argc > 1 ? argv[1] : EMUD_POLICY_SRCDIR;
        long iterations = argc > 2 ? atol(argv[2]) : 20000;
        int trials = argc > 3 ? atoi(argv[3]) : 41;
        const char *dirs[] = { dir, NULL };
        g_autoptr(GError) err = NULL;

        if (iterations <= 0 || trials <= 0) {
                fprintf(stderr, "usage: bench-seccomp [POLICY_DIR [ITERATIONS [TRIALS]]]\n");
                return 2;
        }
        g_autoptr(EmuPolicy) p = emu_policy_load("vhost-user-blk", dirs, &err);
        if (!p) {
                fprintf(stderr, "bench-seccomp: %s\n", err->message);
                return 1;
        }
        /* The sandbox's own flags (sandbox.c): the supervisor names what the policy denies. */
        g_autoptr(EmuBpf) tree = NULL, linear = NULL;
        if (emu_policy_compile(p, EMU_COMPILE_NOTIFY, &tree) < 0 ||
            emu_policy_compile(p, EMU_COMPILE_NOTIFY | EMU_COMPILE_NO_OPTIMIZE, &linear) < 0) {
                fprintf(stderr, "bench-seccomp: cannot compile the policy\n");
                return 1;
        }
        struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
        struct sock_fprog allow_all = { .len = 1, .filter = allow };
        const struct sock_fprog *progs[N_VARIANTS] = { NULL, &allow_all, &tree->prog,
                                                       &linear->prog };
        int cpu = pin_to_one_cpu();

        g_autofree double *ns = g_new(double, (size_t)trials * N_VARIANTS);
        g_autofree double *d_allow = g_new(double, trials);
        g_autofree double *d_tree = g_new(double, trials);
        g_autofree double *d_linear = g_new(double, trials);
        g_autofree double *base = g_new(double, trials);
        for (int t = 0; t < trials; t++) {
                for (int k = 0; k < N_VARIANTS; k++) {
                        int v = (t + k) % N_VARIANTS;
                        ns[t * N_VARIANTS + v] = run(progs[v], iterations);
                        if (ns[t * N_VARIANTS + v] < 0) {
                                fprintf(stderr, "bench-seccomp: trial %d failed\n", t);
                                return 1;
                        }
                }
                base[t] = ns[t * N_VARIANTS + NONE];
                d_allow[t] = ns[t * N_VARIANTS + ALLOW_ALL] - base[t];
                d_tree[t] = ns[t * N_VARIANTS + TREE] - base[t];
                d_linear[t] = ns[t * N_VARIANTS + LINEAR] - base[t];
        }

        printf("getppid() via syscall(), %d trials on %s%d; each variant per trial is the best of "
               "%d rounds of %ld calls in a fresh child\n",
               trials, cpu >= 0 ? "CPU " : "no pinned CPU ", cpu >= 0 ? cpu : 0, ROUNDS,
               iterations);
        printf("  %-40s %9s   %s\n", "", "median", "10th..90th percentile");
        double b10 = quantile(base, trials, 0.1), b90 = quantile(base, trials, 0.9);
        printf("  %-40s %6.1f ns  %7.1f..%.1f ns/call\n", "no filter", quantile(base, trials, 0.5),
               b10, b90);
        const struct {
                const char *name;
                unsigned len;
                double *d;
        } rows[] = { { "allow-all filter", 1, d_allow },
                     { "qsd policy, tree", tree->prog.len, d_tree },
                     { "qsd policy, linear", linear->prog.len, d_linear } };
        for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
                g_autofree char *label = g_strdup_printf("%-18s (%3u insns), added",
                                                         rows[i].name, rows[i].len);
                double lo = quantile(rows[i].d, trials, 0.1), hi = quantile(rows[i].d, trials, 0.9);
                printf("  %-40s %+6.1f ns  %+7.1f..%+.1f ns/call\n", label,
                       quantile(rows[i].d, trials, 0.5), lo, hi);
        }
        /* The program's own share: tree against allow-all, paired per trial as well. */
        for (int t = 0; t < trials; t++)
                d_tree[t] = ns[t * N_VARIANTS + TREE] - ns[t * N_VARIANTS + ALLOW_ALL];
        double lo = quantile(d_tree, trials, 0.1), hi = quantile(d_tree, trials, 0.9);
        printf("  %-40s %+6.1f ns  %+7.1f..%+.1f ns/call\n", "qsd policy, tree, over allow-all",
               quantile(d_tree, trials, 0.5), lo, hi);
        return 0;
}
