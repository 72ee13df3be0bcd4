/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * interop: discovery of the vhost-user backends a host has installed, from
 * QEMU's interop descriptors (docs/interop/vhost-user.json), and of what each
 * one can do, from its --print-capabilities output.
 *
 * Discovery never fails as a whole: a broken descriptor or a backend that
 * misbehaves when probed becomes one entry that says why it is unusable, so
 * one bad package cannot hide the others.
 */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu-util.h"
#include "interop.h"

/* A backend prints a few lines; anything past this is not a capabilities object. */
#define PROBE_OUTPUT_MAX (64 * 1024)

void emu_interop_backend_free(EmuInteropBackend *b)
{
        if (!b)
                return;
        g_free(b->file);
        g_free(b->origin);
        g_free(b->type);
        g_free(b->binary);
        g_free(b->description);
        g_strfreev(b->features);
        g_free(b->unavailable);
        g_free(b);
}

/* A reason is shown as one line, whatever a file or a backend put into it. */
static char *one_line(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static char *one_line(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *s = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        for (char *c = s; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                        *c = ' ';
        return s;
}

char **emu_interop_default_dirs(void)
{
        g_autoptr(GStrvBuilder) dirs = g_strv_builder_new();
        g_strv_builder_add(dirs, "/usr/share/qemu/vhost-user");
        g_strv_builder_add(dirs, "/etc/qemu/vhost-user");

        /* The XDG base directory spec says to ignore a relative XDG_CONFIG_HOME. */
        const char *xdg = g_getenv("XDG_CONFIG_HOME");
        const char *home = g_getenv("HOME");
        g_autofree char *user = NULL;
        if (xdg && xdg[0] == '/')
                user = g_build_filename(xdg, "qemu", "vhost-user", NULL);
        else if (home && home[0] == '/')
                user = g_build_filename(home, ".config", "qemu", "vhost-user", NULL);
        if (user)
                g_strv_builder_add(dirs, user);
        return g_strv_builder_end(dirs);
}

/* Fills in type, binary and description; returns why the file is malformed, or NULL. */
static char *parse_descriptor(EmuInteropBackend *b)
{
        struct stat st;
        if (stat(b->origin, &st) < 0)
                return one_line("%s: %s", b->origin, g_strerror(errno));
        /* Reading a FIFO or a device could block the scan for good. */
        if (!S_ISREG(st.st_mode))
                return one_line("%s: not a regular file", b->origin);

        g_autofree char *data = NULL;
        gsize len = 0;
        g_autoptr(GError) err = NULL;
        if (!g_file_get_contents(b->origin, &data, &len, &err))
                return one_line("%s", err->message);

        json_error_t jerr;
        g_autoptr(json_t) root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                return one_line("%s: line %d: %s", b->origin, jerr.line, jerr.text);
        if (!json_is_object(root))
                return one_line("%s: not a JSON object", b->origin);

        /* Other keys are ignored: the interop schema may grow. */
        const char *type = json_string_value(json_object_get(root, "type"));
        const char *binary = json_string_value(json_object_get(root, "binary"));
        if (!type || !type[0])
                return one_line("%s: 'type' must be a string", b->origin);
        if (!binary || binary[0] != '/')
                return one_line("%s: 'binary' must be an absolute path", b->origin);
        b->type = g_strdup(type);
        b->binary = g_strdup(binary);
        b->description = g_strdup(json_string_value(json_object_get(root, "description")));
        return NULL;
}

static void child_setup(gpointer data)
{
        /* Its own process group, so a timeout also kills whatever a wrapper script forked. */
        setpgid(0, 0);
}

/* Milliseconds left until deadline (monotonic µs), rounded up; 0 once it has passed. */
static int ms_left(gint64 deadline)
{
        gint64 left = deadline - g_get_monotonic_time();
        return left <= 0 ? 0 : (int)MIN((left + 999) / 1000, G_MAXINT);
}

/* Read fd to EOF into out; 0, -ETIMEDOUT, -EFBIG past PROBE_OUTPUT_MAX, or -errno. */
static int read_until(int fd, gint64 deadline, GString *out)
{
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int timeout = ms_left(deadline);
                if (timeout == 0)
                        return -ETIMEDOUT;
                int r = poll(&p, 1, timeout);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;

                char buf[4096];
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
                if (out->len + (size_t)n > PROBE_OUTPUT_MAX)
                        return -EFBIG;
                g_string_append_len(out, buf, n);
        }
}

/*
 * Reap pid by the deadline; 0 or -ETIMEDOUT, or -errno when it cannot be waited
 * for. A backend may close stdout and linger, so EOF alone does not mean it is gone.
 * Polling with a short pause keeps this free of SIGCHLD handlers and main loops.
 */
static int wait_until(GPid pid, gint64 deadline, int *ret_status)
{
        for (gulong pause = 500;; pause = MIN(pause * 2, 20000)) {
                pid_t r = waitpid(pid, ret_status, WNOHANG);
                if (r == pid)
                        return 0;
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (ms_left(deadline) == 0)
                        return -ETIMEDOUT;
                g_usleep(MIN(pause, (gulong)ms_left(deadline) * 1000));
        }
}

static void kill_and_reap(GPid pid, int *ret_status)
{
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, ret_status, 0) < 0 && errno == EINTR)
                ;
}

/* Parse the capabilities object; the reason it is unusable, or NULL with b->features set. */
static char *parse_capabilities(EmuInteropBackend *b, const GString *out)
{
        json_error_t jerr;
        g_autoptr(json_t) root = json_loadb(out->str, out->len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                return one_line("%s --print-capabilities: invalid JSON: line %d: %s", b->binary,
                                jerr.line, jerr.text);
        if (!json_is_object(root))
                return one_line("%s --print-capabilities: not a JSON object", b->binary);
        const char *type = json_string_value(json_object_get(root, "type"));
        if (!type)
                return one_line("%s --print-capabilities: no 'type'", b->binary);
        if (strcmp(type, b->type) != 0)
                return one_line("%s --print-capabilities: type '%s' differs from '%s' in %s",
                                b->binary, type, b->type, b->origin);

        json_t *features = json_object_get(root, "features");
        if (features && !json_is_array(features))
                return one_line("%s --print-capabilities: 'features' must be a list of strings",
                                b->binary);
        g_auto(GStrv) list = g_new0(char *, json_array_size(features) + 1);
        size_t i;
        json_t *f;
        json_array_foreach (features, i, f) {
                if (!json_is_string(f))
                        return one_line("%s --print-capabilities: 'features' must be a list "
                                        "of strings", b->binary);
                list[i] = g_strdup(json_string_value(f));
        }
        g_strfreev(b->features);
        b->features = g_steal_pointer(&list);
        return NULL;
}

char *emu_run_bounded(const char *const *argv, guint timeout_ms, GString *output)
{
        g_autoptr(GError) err = NULL;
        g_autofree char *cmd = g_strjoinv(" ", (char **)argv);
        GPid pid = 0;
        emu_autofd out = -1;
        if (!g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                                      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDERR_TO_DEV_NULL,
                                      child_setup, NULL, &pid, NULL, &out, NULL, &err))
                return one_line("%s: %s", cmd, err->message);

        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
        int status = 0;
        int r = read_until(out, deadline, output);
        out = emu_close(out);
        if (r == 0)
                r = wait_until(pid, deadline, &status);
        if (r == -ECHILD)
                /* Someone else reaped it (SIGCHLD ignored?); the pid may be reused, so no kill. */
                return one_line("%s: cannot wait for it: %s", cmd, g_strerror(-r));
        if (r < 0)
                kill_and_reap(pid, &status);
        g_spawn_close_pid(pid);

        if (r == -ETIMEDOUT)
                return one_line("%s: timed out after %u ms", cmd, timeout_ms);
        if (r == -EFBIG)
                return one_line("%s: more than %d bytes of output", cmd, PROBE_OUTPUT_MAX);
        if (r < 0)
                return one_line("%s: %s", cmd, g_strerror(-r));
        if (WIFSIGNALED(status))
                return one_line("%s: killed by signal %d", cmd, WTERMSIG(status));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return one_line("%s: exited with status %d", cmd, WEXITSTATUS(status));
        return NULL;
}

/* Run BINARY --print-capabilities; the reason it is unusable, or NULL. */
static char *probe(EmuInteropBackend *b, guint timeout_ms)
{
        const char *argv[] = { b->binary, "--print-capabilities", NULL };
        g_autoptr(GString) output = g_string_new(NULL);
        char *why = emu_run_bounded(argv, timeout_ms, output);
        return why ? why : parse_capabilities(b, output);
}

static EmuInteropBackend *backend_load(const char *file, const char *origin, guint timeout_ms)
{
        g_autoptr(EmuInteropBackend) b = g_new0(EmuInteropBackend, 1);
        b->file = g_strdup(file);
        b->origin = g_strdup(origin);
        b->features = g_new0(char *, 1);

        b->unavailable = parse_descriptor(b);
        if (b->unavailable)
                return g_steal_pointer(&b);

        struct stat st;
        if (stat(b->binary, &st) < 0)
                b->unavailable = errno == ENOENT || errno == ENOTDIR
                                         ? one_line("%s is not installed", b->binary)
                                         : one_line("%s: %s", b->binary, g_strerror(errno));
        else if (!S_ISREG(st.st_mode) || access(b->binary, X_OK) < 0)
                b->unavailable = one_line("%s is not executable", b->binary);
        else
                b->unavailable = probe(b, timeout_ms);
        return g_steal_pointer(&b);
}

static int compare_names(gconstpointer a, gconstpointer b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *emu_interop_scan(const char *const *dirs, guint probe_timeout_ms)
{
        if (probe_timeout_ms == 0)
                probe_timeout_ms = EMU_INTEROP_PROBE_TIMEOUT_MS;

        /* File name -> path of the file that wins, or NULL where an empty file masks it. */
        g_autoptr(GHashTable) winners = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                              g_free);
        for (; dirs && *dirs; dirs++) {
                g_autoptr(GDir) d = g_dir_open(*dirs, 0, NULL);
                if (!d)
                        continue;
                const char *entry;
                while ((entry = g_dir_read_name(d))) {
                        if (!g_str_has_suffix(entry, ".json"))
                                continue;
                        g_autofree char *path = g_build_filename(*dirs, entry, NULL);
                        /* stat, not lstat: a symlink to /dev/null masks too, as in systemd. */
                        struct stat st;
                        bool masked = stat(path, &st) == 0 && st.st_size == 0;
                        g_hash_table_insert(winners, g_strdup(entry),
                                            masked ? NULL : g_steal_pointer(&path));
                }
        }

        g_autoptr(GPtrArray) names = g_ptr_array_new();
        GHashTableIter it;
        gpointer name, path;
        g_hash_table_iter_init(&it, winners);
        while (g_hash_table_iter_next(&it, &name, &path))
                if (path)
                        g_ptr_array_add(names, name);
        g_ptr_array_sort(names, compare_names);

        GPtrArray *backends = g_ptr_array_new_with_free_func(
                (GDestroyNotify)emu_interop_backend_free);
        for (guint i = 0; i < names->len; i++) {
                const char *file = g_ptr_array_index(names, i);
                g_ptr_array_add(backends, backend_load(file, g_hash_table_lookup(winners, file),
                                                       probe_timeout_ms));
        }
        return backends;
}
