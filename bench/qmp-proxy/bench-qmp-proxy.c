/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench-qmp-proxy: what the QMP proxy costs, against QEMU directly, in one
 * run on one QEMU (DESIGN.md: always against a baseline measured alongside).
 *
 * One paused QEMU gets 18 monitors: 8 for direct clients, one for a
 * byte-copying relay (the floor for any proxy), and 9 for the proxy, which
 * runs in-process on a GLib main loop in its own thread (as in emud): its
 * primary and 8 more for clients (emuctl vm-add --qmp ... --qmp ...), so
 * that 8 proxied clients have as many QEMU monitors as 8 direct ones. Printed: query-status round-trip p50/p99 direct vs proxied,
 * commands/s with 1 and 8 synchronous clients direct vs proxied, and the
 * latency from QEMU's event timestamp to arrival at 16 proxied clients
 * (and at one direct client), with the targets from issue #3.
 *
 *   bench-qmp-proxy [--rounds N]     (QEMU from $EMUD_QEMU or PATH)
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu-socket.h"
#include "emu-util.h"
#include "proxy.h"
#include "qmp-client.h"

#define DIRECT_MONITORS 8
#define RELAY_MONITOR DIRECT_MONITORS
#define PROXY_MONITOR (RELAY_MONITOR + 1)
#define PROXY_EXTRA 8
#define N_MONITORS (PROXY_MONITOR + 1 + PROXY_EXTRA)
#define FANOUT_CLIENTS 16

typedef struct {
        int fd;
        char buf[1 << 16];
        size_t len;
} Conn;

static double now_us(void)
{
        return (double)g_get_monotonic_time();
}

/* In QEMU's child before exec: a bench that dies (die() below) takes QEMU along. */
static void die_with_parent(gpointer unused)
{
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static void die(const char *what)
{
        fprintf(stderr, "bench-qmp-proxy: %s: %s\n", what, g_strerror(errno));
        exit(1);
}

/* Next line (NUL-terminated, in c->buf's scratch); blocking. */
static char *read_line(Conn *c, char *out, size_t outlen)
{
        for (;;) {
                char *nl = memchr(c->buf, '\n', c->len);
                if (nl) {
                        size_t n = (size_t)(nl - c->buf) + 1;
                        size_t copy = n < outlen ? n : outlen - 1;
                        memcpy(out, c->buf, copy);
                        out[copy] = 0;
                        memmove(c->buf, c->buf + n, c->len - n);
                        c->len -= n;
                        return out;
                }
                if (c->len == sizeof(c->buf))
                        c->len = 0; /* a line longer than we care for */
                ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
                if (r <= 0)
                        die("read");
                c->len += (size_t)r;
        }
}

static void write_all(int fd, const char *s, size_t len)
{
        while (len) {
                ssize_t n = write(fd, s, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        die("write");
                s += n;
                len -= (size_t)n;
        }
}

static void conn_open(Conn *c, const char *path)
{
        for (int i = 0; i < 500; i++) {
                c->fd = emu_unix_connect(path);
                if (c->fd >= 0)
                        break;
                c->fd = -1;
                g_usleep(10000);
        }
        if (c->fd < 0)
                die(path);
        c->len = 0;
        char line[4096];
        read_line(c, line, sizeof(line)); /* greeting */
        static const char caps[] = "{\"execute\":\"qmp_capabilities\"}\n";
        write_all(c->fd, caps, strlen(caps));
        read_line(c, line, sizeof(line));
}

/* One synchronous command; events that come first are skipped. */
static void roundtrip(Conn *c, const char *cmd)
{
        char line[8192];
        write_all(c->fd, cmd, strlen(cmd));
        do
                read_line(c, line, sizeof(line));
        while (strstr(line, "\"event\""));
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
        qsort(v, n, sizeof(double), cmp_double);
        size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
        return v[i];
}

/*
 * Round trips on several connections, interleaved (one on each in turn), so
 * that every path sees the same QEMU and the same machine noise.
 */
static void latency(Conn **conns, unsigned n, unsigned rounds, double *ret_p50, double *ret_p99)
{
        static const char cmd[] = "{\"execute\":\"query-status\",\"id\":1}\n";
        for (unsigned i = 0; i < rounds / 10; i++)
                for (unsigned k = 0; k < n; k++)
                        roundtrip(conns[k], cmd);
        double *v = g_new(double, (size_t)rounds * n);
        for (unsigned i = 0; i < rounds; i++)
                for (unsigned k = 0; k < n; k++) {
                        double t0 = now_us();
                        roundtrip(conns[k], cmd);
                        v[(size_t)k * rounds + i] = now_us() - t0;
                }
        for (unsigned k = 0; k < n; k++) {
                ret_p50[k] = pct(v + (size_t)k * rounds, rounds, 50);
                ret_p99[k] = pct(v + (size_t)k * rounds, rounds, 99);
        }
        g_free(v);
}

/*
 * The floor for any proxy: a thread that only copies bytes between one
 * client and one QEMU monitor, with no parsing at all. What emud's proxy
 * adds beyond this relay is its own cost; the rest is the extra hop.
 */
typedef struct {
        int listen_fd;
        char *upstream_path;
} Relay;

static gpointer relay_thread(gpointer data)
{
        Relay *r = data;
        int cfd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        int ufd = emu_qmp_connect_unix(r->upstream_path, NULL);
        if (cfd < 0 || ufd < 0)
                die("relay");
        struct pollfd pf[2] = { { .fd = cfd, .events = POLLIN }, { .fd = ufd, .events = POLLIN } };
        char buf[1 << 16];
        for (;;) {
                if (poll(pf, 2, -1) < 0 && errno != EINTR)
                        break;
                for (int i = 0; i < 2; i++) {
                        if (!pf[i].revents)
                                continue;
                        ssize_t n = read(pf[i].fd, buf, sizeof(buf));
                        /* A short write only happens once the client is gone. */
                        if (n <= 0 || write(pf[!i].fd, buf, (size_t)n) != n) {
                                close(cfd);
                                close(ufd);
                                return NULL;
                        }
                }
        }
        return NULL;
}

static int relay_listen(const char *path)
{
        int fd = emu_unix_listen(path, 1);
        if (fd < 0)
                die(path);
        return fd;
}

typedef struct {
        Conn *conn;
        unsigned rounds;
} Worker;

static void *worker(void *arg)
{
        Worker *w = arg;
        for (unsigned i = 0; i < w->rounds; i++)
                roundtrip(w->conn, "{\"execute\":\"query-status\",\"id\":\"w\"}\n");
        return NULL;
}

static double throughput(Conn *conns, unsigned n, unsigned rounds)
{
        pthread_t th[DIRECT_MONITORS];
        Worker w[DIRECT_MONITORS];
        double t0 = now_us();
        for (unsigned i = 0; i < n; i++) {
                w[i] = (Worker){ .conn = &conns[i], .rounds = rounds };
                pthread_create(&th[i], NULL, worker, &w[i]);
        }
        for (unsigned i = 0; i < n; i++)
                pthread_join(th[i], NULL);
        return (double)n * rounds / ((now_us() - t0) / 1e6);
}

/* Arrival minus QEMU's timestamp for every event on every connection in fds. */
static void fanout(Conn *driver, Conn *watch, unsigned n_watch, unsigned events,
                   GArray *direct, GArray *proxied)
{
        for (unsigned e = 0; e < events; e++) {
                roundtrip(driver, e % 2 ? "{\"execute\":\"stop\"}\n" : "{\"execute\":\"cont\"}\n");
                for (unsigned i = 0; i < n_watch; i++) {
                        char line[4096];
                        read_line(&watch[i], line, sizeof(line));
                        double arrived = (double)g_get_real_time();
                        g_autoptr(json_t) ev = json_loads(line, 0, NULL);
                        json_t *ts = json_object_get(ev, "timestamp");
                        double sent = (double)json_integer_value(json_object_get(ts, "seconds")) *
                                              1e6 +
                                      (double)json_integer_value(json_object_get(ts, "microseconds"));
                        double d = arrived - sent;
                        g_array_append_val(i == 0 ? direct : proxied, d);
                }
        }
}

/* A QMP client on monitor i, once QEMU has created its socket. */
static EmuQmpClient *upstream(const char *dir, int i)
{
        g_autofree char *path = g_strdup_printf("%s/m%d.sock", dir, i);
        g_autoptr(GError) err = NULL;
        int fd = -1;
        for (int tries = 0; tries < 500 && fd < 0; tries++) {
                g_clear_error(&err);
                fd = emu_qmp_connect_unix(path, &err);
                if (fd < 0)
                        g_usleep(10000);
        }
        if (fd < 0) {
                fprintf(stderr, "bench-qmp-proxy: %s\n", err->message);
                exit(1);
        }
        static const EmuQmpClientOps no_ops = { 0 };
        return emu_qmp_client_new(fd, path, 10000, &no_ops, NULL);
}

static pid_t proxy_tid;

/* Nanoseconds the proxy's thread has spent on a CPU (schedstat's first field). */
static double proxy_cpu_ns(void)
{
        g_autofree char *path = g_strdup_printf("/proc/self/task/%d/schedstat", (int)proxy_tid);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL))
                return 0;
        return g_ascii_strtod(text, NULL);
}

static gpointer loop_thread(gpointer loop)
{
        proxy_tid = gettid();
        g_main_loop_run(loop);
        return NULL;
}

static void verdict(const char *what, double value, const char *op, double target)
{
        bool ok = strcmp(op, "<=") == 0 ? value <= target : value >= target;
        printf("  %-44s %10.2f   target %s %-8.2f %s\n", what, value, op, target,
               ok ? "ok" : "MISSED");
}

int main(int argc, char **argv)
{
        unsigned rounds = argc > 2 && strcmp(argv[1], "--rounds") == 0 ? (unsigned)atoi(argv[2])
                                                                        : 20000;
        const char *qemu = g_getenv("EMUD_QEMU") ? g_getenv("EMUD_QEMU") : "qemu-system-x86_64";
        g_autofree char *dir = g_dir_make_tmp("bench-qmp-proxy-XXXXXX", NULL);
        g_autoptr(GPtrArray) av = g_ptr_array_new_with_free_func(g_free);
        const char *fixed[] = { qemu, "-M", "q35", "-nodefaults", "-no-user-config", "-display",
                                "none", "-accel", "tcg", "-m", "128M", "-S" };
        for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
                g_ptr_array_add(av, g_strdup(fixed[i]));
        for (int i = 0; i < N_MONITORS; i++) {
                g_ptr_array_add(av, g_strdup("-qmp"));
                g_ptr_array_add(av, g_strdup_printf("unix:%s/m%d.sock,server=on,wait=off", dir, i));
        }
        g_ptr_array_add(av, NULL);
        GPid pid;
        g_autoptr(GError) err = NULL;
        if (!g_spawn_async(NULL, (char **)av->pdata, NULL, G_SPAWN_SEARCH_PATH, die_with_parent,
                           NULL, &pid, &err)) {
                fprintf(stderr, "bench-qmp-proxy: %s\n", err->message);
                return 77;
        }

        /* The proxy, in-process, on its monitors; every link ready before clients come. */
        g_autofree char *proxy_path = g_strdup_printf("%s/proxy.sock", dir);
        g_autofree char *relay_path = g_strdup_printf("%s/relay.sock", dir);
        EmuQmpClient *ups[1 + PROXY_EXTRA];
        for (int k = 0; k < 1 + PROXY_EXTRA; k++)
                ups[k] = upstream(dir, PROXY_MONITOR + k);
        EmuQmpProxy *proxy = emu_qmp_proxy_new(ups[0], proxy_path, NULL, &err);
        if (!proxy) {
                fprintf(stderr, "bench-qmp-proxy: %s\n", err->message);
                return 1;
        }
        for (int k = 1; k < 1 + PROXY_EXTRA; k++)
                emu_qmp_proxy_add_upstream(proxy, ups[k]);
        for (int k = 0; k < 1 + PROXY_EXTRA; k++)
                while (!emu_qmp_client_is_ready(ups[k]))
                        g_main_context_iteration(NULL, TRUE);
        GMainLoop *loop = g_main_loop_new(NULL, FALSE);
        GThread *th = g_thread_new("proxy", loop_thread, loop);

        Conn *direct = g_new0(Conn, DIRECT_MONITORS);
        Conn *proxied = g_new0(Conn, FANOUT_CLIENTS);
        for (int i = 0; i < DIRECT_MONITORS; i++) {
                g_autofree char *p = g_strdup_printf("%s/m%d.sock", dir, i);
                conn_open(&direct[i], p);
        }
        for (int i = 0; i < FANOUT_CLIENTS; i++)
                conn_open(&proxied[i], proxy_path);

        /* The relay, on the monitor after the proxy's. */
        Relay relay = {
                .listen_fd = relay_listen(relay_path),
                .upstream_path = g_strdup_printf("%s/m%d.sock", dir, RELAY_MONITOR),
        };
        GThread *relay_th = g_thread_new("relay", relay_thread, &relay);
        Conn relayed = { 0 };
        conn_open(&relayed, relay_path);

        double p50s[3], p99s[3];
        double cpu0 = proxy_cpu_ns();
        latency((Conn *[]){ &direct[0], &proxied[0], &relayed }, 3, rounds, p50s, p99s);
        double cpu_per_cmd = (proxy_cpu_ns() - cpu0) / 1e3 / (rounds + rounds / 10);
        double d50 = p50s[0], d99 = p99s[0], p50 = p50s[1], p99 = p99s[1];
        double d1 = throughput(direct, 1, rounds), p1 = throughput(proxied, 1, rounds);
        double d8 = throughput(direct, 8, rounds / 4), p8 = throughput(proxied, 8, rounds / 4);

        g_autoptr(GArray) ev_direct = g_array_new(FALSE, FALSE, sizeof(double));
        g_autoptr(GArray) ev_proxied = g_array_new(FALSE, FALSE, sizeof(double));
        Conn *watch = g_new0(Conn, FANOUT_CLIENTS + 1);
        watch[0] = direct[1];
        memcpy(watch + 1, proxied, sizeof(Conn) * FANOUT_CLIENTS);
        fanout(&direct[0], watch, FANOUT_CLIENTS + 1, 400, ev_direct, ev_proxied);

        printf("QMP proxy benchmark: QEMU %s, %u rounds, same QEMU for both paths\n", qemu,
               rounds);
        printf("  query-status round trip, direct       p50 %8.1f us   p99 %8.1f us\n", d50, d99);
        printf("  query-status round trip, proxied      p50 %8.1f us   p99 %8.1f us\n", p50, p99);
        printf("  query-status round trip, byte relay   p50 %8.1f us   p99 %8.1f us"
               "   (a thread that only copies bytes: the cost of any extra hop)\n",
               p50s[2], p99s[2]);
        printf("  proxy thread CPU per proxied command  %8.1f us\n", cpu_per_cmd);
        printf("  commands/s, 1 client                  direct %9.0f   proxied %9.0f\n", d1, p1);
        printf("  commands/s, 8 clients                 direct %9.0f   proxied %9.0f\n", d8, p8);
        printf("  event latency (QEMU timestamp to arrival), 1 direct client: p50 %.1f us, "
               "p99 %.1f us\n",
               pct((double *)ev_direct->data, ev_direct->len, 50),
               pct((double *)ev_direct->data, ev_direct->len, 99));
        printf("  event latency, %d proxied clients:                p50 %.1f us, p99 %.1f us\n",
               FANOUT_CLIENTS, pct((double *)ev_proxied->data, ev_proxied->len, 50),
               pct((double *)ev_proxied->data, ev_proxied->len, 99));
        printf("Targets (issue #3):\n");
        verdict("added p50 (us)", p50 - d50, "<=", 20);
        verdict("added p99 (us)", p99 - d99, "<=", 100);
        verdict("throughput 1 client, proxied/direct", p1 / d1, ">=", 0.9);
        verdict("throughput 8 clients, proxied/direct", p8 / d8, ">=", 0.9);

        printf("  (added p50 beyond the byte relay: %.1f us)\n", p50 - p50s[2]);
        close(relayed.fd); /* the relay thread sees EOF and returns */
        g_thread_join(relay_th);
        close(relay.listen_fd);
        unlink(relay_path);
        g_free(relay.upstream_path);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        g_main_loop_quit(loop);
        g_thread_join(th);
        for (int i = 0; i < DIRECT_MONITORS; i++)
                close(direct[i].fd);
        for (int i = 0; i < FANOUT_CLIENTS; i++)
                close(proxied[i].fd);
        emu_qmp_proxy_free(proxy);
        for (int k = 0; k < 1 + PROXY_EXTRA; k++)
                emu_qmp_client_free(ups[k]);
        g_main_loop_unref(loop);
        g_free(watch);
        g_free(direct);
        g_free(proxied);
        for (int i = 0; i < N_MONITORS; i++) {
                g_autofree char *m = g_strdup_printf("%s/m%d.sock", dir, i);
                unlink(m);
        }
        rmdir(dir);
        return 0;
}
