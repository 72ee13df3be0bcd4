/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-cgroup-parent: emu_cgroup_prepare_parent() against the real cgroupfs.
 *
 * Each case builds what systemd builds for emud.service, under the cgroup2
 * root: a "slice" T with memory and pids on in its cgroup.subtree_control,
 * and G = T/emud.service carrying trusted.delegate=1 (Delegate=yes). A forked
 * helper stands in for emud: it joins G, calls the function and reports; the
 * test then looks at the tree from outside, and removes all of it.
 *
 * Needs root and a writable cgroup2 hierarchy (else the whole file is
 * skipped, with the reason). Most cases also need the memory and pids
 * controllers in cgroup2, which a hybrid host (v1 hierarchies holding them)
 * does not have: those cases skip there, and test-cgroup-guest.py runs this
 * binary again in a guest with a pure cgroup2 hierarchy.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "emu-util.h"
#include "launcher.h"
#include "sandbox-cgroup.h"
#include "sandbox.h"

static char *mnt;              /* the cgroup2 mount */
static char *no_controllers;   /* why the delegated cases cannot run, or NULL */
static bool restore_root;      /* we enabled memory and pids in the root ourselves */

/* ---- cgroupfs helpers ---- */

static char *find_cgroup2(void)
{
        g_autofree char *info = NULL;
        g_assert_true(g_file_get_contents("/proc/self/mountinfo", &info, NULL, NULL));
        g_auto(GStrv) lines = g_strsplit(info, "\n", -1);
        for (char **l = lines; *l; l++) {
                const char *sep = strstr(*l, " - cgroup2 ");
                g_auto(GStrv) f = g_strsplit(*l, " ", 6);
                if (sep && g_strv_length(f) >= 5)
                        return g_strdup(f[4]);
        }
        return NULL;
}

static int put(const char *dir, const char *file, const char *value)
{
        g_autofree char *path = g_build_filename(dir, file, NULL);
        emu_autofd fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, value, strlen(value)) < 0)
                return -errno;
        return 0;
}

static char *get(const char *dir, const char *file)
{
        g_autofree char *path = g_build_filename(dir, file, NULL);
        char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL))
                return NULL;
        return g_strstrip(text);
}

static bool has_word(const char *text, const char *word)
{
        g_auto(GStrv) w = g_strsplit_set(text ? text : "", " \n", -1);
        return g_strv_contains((const char *const *)w, word);
}

/* The "0::" path of a task, as /proc shows it; tid 0 for the process. */
static char *cgroup_of(pid_t pid, pid_t tid)
{
        g_autofree char *path = tid ? g_strdup_printf("/proc/%d/task/%d/cgroup", pid, tid)
                                    : g_strdup_printf("/proc/%d/cgroup", pid);
        g_autofree char *text = NULL;
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++)
                if (g_str_has_prefix(*l, "0::"))
                        return g_strdup(*l + 3);
        return NULL;
}

/* A cgroup directory as /proc/PID/cgroup spells it. */
static const char *rel(const char *dir)
{
        const char *r = dir + strlen(mnt);
        return *r ? r : "/";
}

/* ---- the systemd-like tree ---- */

typedef struct {
        char *slice;    /* T */
        char *service;  /* G = T/emud.service */
} Tree;

static void tree_make(Tree *t, const char *name, bool controllers, bool delegated)
{
        t->slice = g_strdup_printf("%s/emud-test-%d-%s.slice", mnt, (int)getpid(), name);
        t->service = g_build_filename(t->slice, "emud.service", NULL);
        g_assert_cmpint(mkdir(t->slice, 0755), ==, 0);
        if (controllers)
                g_assert_cmpint(put(t->slice, "cgroup.subtree_control", "+memory +pids"), ==, 0);
        g_assert_cmpint(mkdir(t->service, 0755), ==, 0);
        /* As systemd 252 marks it; user.delegate is the one an unprivileged reader sees. */
        if (delegated) {
                g_assert_cmpint(setxattr(t->service, "trusted.delegate", "1", 1, 0), ==, 0);
                g_assert_cmpint(setxattr(t->service, "user.delegate", "1", 1, 0), ==, 0);
        }
}

/* Remove T and everything below it, deepest first; nothing may be left. */
static void tree_remove(Tree *t)
{
        g_autoptr(GDir) d = g_dir_open(t->service, 0, NULL);
        for (const char *n; d && (n = g_dir_read_name(d));) {
                g_autofree char *p = g_build_filename(t->service, n, NULL);
                if (g_file_test(p, G_FILE_TEST_IS_DIR))
                        g_assert_cmpint(rmdir(p), ==, 0);
        }
        g_assert_cmpint(rmdir(t->service), ==, 0);
        g_assert_cmpint(rmdir(t->slice), ==, 0);
        g_assert_false(g_file_test(t->slice, G_FILE_TEST_EXISTS));
        g_free(t->slice);
        g_free(t->service);
}

/* The tree as it was before a failed call: helper still in G, no supervisor, nothing on. */
static void assert_untouched(const Tree *t, pid_t helper)
{
        g_autofree char *cg = cgroup_of(helper, 0);
        g_autofree char *sup = g_build_filename(t->service, EMU_CGROUP_SUPERVISOR, NULL);
        g_autofree char *enabled = get(t->service, "cgroup.subtree_control");
        g_assert_cmpstr(cg, ==, rel(t->service));
        g_assert_false(g_file_test(sup, G_FILE_TEST_EXISTS));
        g_assert_cmpstr(enabled, ==, "");
}

/* ---- the helper standing in for emud ---- */

typedef struct {
        const char *join;        /* the cgroup it enters first */
        const char *configured;  /* cgroup-parent= */
        bool systemd;            /* /run/systemd/system exists (in its own mount namespace) */
        bool readonly;           /* cgroup2 read-only, as ProtectControlGroups=yes makes it */
        bool no_cgroup2;         /* no cgroup2 mounted at all */
        bool unprivileged;       /* uid and gid 65534 */
        bool thread;             /* a second thread, which has to move too */
} HelperSetup;

typedef struct {
        pid_t pid;
        int go;                  /* closing it lets the helper exit */
        int r;
        char *parent, *message;
} Helper;

static void *sleeper(void *fd)
{
        char b;
        while (read(GPOINTER_TO_INT(fd), &b, 1) > 0)
                ;
        return NULL;
}

static int helper_setup(const HelperSetup *hs, int go)
{
        if (hs->join && put(hs->join, "cgroup.procs", "0") < 0)
                return -errno;
        if (hs->systemd || hs->readonly || hs->no_cgroup2) {
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
                        return -errno;
        }
        if (hs->systemd && (mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0 ||
                            g_mkdir_with_parents("/run/systemd/system", 0755) < 0))
                return -errno;
        if (hs->readonly && mount(NULL, mnt, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
                return -errno;
        for (char *m; hs->no_cgroup2 && (m = find_cgroup2()); g_free(m))
                if (umount2(m, MNT_DETACH) < 0)
                        return -errno;
        if (hs->unprivileged &&
            (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0))
                return -errno;
        pthread_t th;
        if (hs->thread && pthread_create(&th, NULL, sleeper, GINT_TO_POINTER(go)) != 0)
                return -EAGAIN;
        return 0;
}

/* Fork the helper, let it call the function, and read its report. */
static void helper_start(Helper *h, const HelperSetup *hs)
{
        int report[2], go[2];
        g_assert_cmpint(pipe2(report, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(go, O_CLOEXEC), ==, 0);
        h->pid = fork();
        g_assert_cmpint(h->pid, >=, 0);
        if (h->pid == 0) {
                /* No GTest assertions in here: report, then wait to be let go. */
                close(report[0]);
                close(go[1]);
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                g_autofree char *parent = NULL, *message = NULL, *out = NULL;
                int r = helper_setup(hs, go[0]);
                if (r < 0)
                        out = g_strdup_printf("setup\n%s\n\n", g_strerror(-r));
                else {
                        r = emu_cgroup_prepare_parent(hs->configured, &parent, &message);
                        out = g_strdup_printf("%d\n%s\n%s\n", r, parent ? parent : "(null)",
                                              message ? message : "(null)");
                }
                if (write(report[1], out, strlen(out)) < 0)
                        _exit(2);
                close(report[1]);
                char b;
                while (read(go[0], &b, 1) > 0)
                        ;
                _exit(0);
        }
        close(report[1]);
        close(go[0]);
        h->go = go[1];
        g_autoptr(GString) s = g_string_new(NULL);
        char buf[1024];
        ssize_t n;
        while ((n = read(report[0], buf, sizeof(buf))) > 0)
                g_string_append_len(s, buf, n);
        close(report[0]);
        g_auto(GStrv) f = g_strsplit(s->str, "\n", 4);
        g_assert_cmpuint(g_strv_length(f), >=, 3);
        g_test_message("helper: r=%s parent=%s message=%s", f[0], f[1], f[2]);
        g_assert_cmpstr(f[0], !=, "setup"); /* the helper could not set itself up: f[1] */
        h->r = (int)g_ascii_strtoll(f[0], NULL, 10);
        h->parent = g_str_equal(f[1], "(null)") ? NULL : g_strdup(f[1]);
        h->message = g_str_equal(f[2], "(null)") ? NULL : g_strdup(f[2]);
}

static void helper_stop(Helper *h)
{
        int status = 0;
        close(h->go);
        g_assert_cmpint(waitpid(h->pid, &status, 0), ==, h->pid);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        g_free(h->parent);
        g_free(h->message);
}

static bool skip_without_controllers(void)
{
        if (no_controllers)
                g_test_skip(no_controllers);
        return no_controllers != NULL;
}

/* ---- the cases ---- */

/* A process in the leaf, entered as emud enters it: clone3(CLONE_INTO_CGROUP). */
static void check_leaf(const char *parent)
{
        g_autoptr(GError) err = NULL;
        g_autofree char *self = g_file_read_link("/proc/self/exe", &err);
        g_assert_no_error(err);
        EmuSandboxConfig cfg = {
                .steps = EMU_SANDBOX_CGROUP,
                .binary = self,
                .cgroup_parent = parent,
                .cgroup_name = "vm0.disk0.1",
                .memory_max = 64 << 20,
                .pids_max = 16,
        };
        g_autoptr(EmuSandbox) sb = emu_sandbox_new(&cfg, &err);
        g_assert_no_error(err);
        const char *const *notes = emu_sandbox_notes(sb);
        g_assert_cmpstr(notes[0], ==, NULL); /* every limit set */
        g_autofree char *leaf = g_build_filename(parent, "emud-vm0.disk0.1", NULL);
        g_assert_cmpstr(emu_sandbox_cgroup(sb), ==, leaf);
        g_autofree char *mem = get(leaf, "memory.max"), *pids = get(leaf, "pids.max");
        g_assert_cmpstr(mem, ==, "67108864");
        g_assert_cmpstr(pids, ==, "16");

        int hold[2];
        g_assert_cmpint(pipe2(hold, O_CLOEXEC), ==, 0);
        char *argv[] = { self, "--hold", NULL };
        EmuLaunchSpec spec = { .argv = argv, .fds = &hold[0], .n_fds = 1, .output_fd = -1,
                               .sandbox = sb };
        EmuLaunched l;
        g_assert_true(emu_launch_full(&spec, &l, &err));
        g_assert_no_error(err);
        close(hold[0]);
        g_autofree char *cg = cgroup_of(l.pid, 0);
        g_assert_cmpstr(cg, ==, rel(leaf));
        g_autofree char *procs = get(leaf, "cgroup.procs");
        g_autofree char *want = g_strdup_printf("%d", (int)l.pid);
        g_assert_cmpstr(procs, ==, want);

        close(hold[1]);
        siginfo_t info = { 0 };
        g_assert_cmpint(waitid(P_PIDFD, (id_t)l.pidfd, &info, WEXITED), ==, 0);
        g_assert_cmpint(info.si_code, ==, CLD_EXITED);
        close(l.pidfd);
        g_clear_pointer(&sb, emu_sandbox_free);
        g_assert_false(g_file_test(leaf, G_FILE_TEST_EXISTS));
}

static void run_delegated(const char *name, bool spell_out)
{
        Tree t;
        Helper h;
        if (skip_without_controllers())
                return;
        tree_make(&t, name, true, true);
        g_autofree char *configured = spell_out ? g_strconcat(t.service, "/", NULL) : NULL;
        HelperSetup hs = { .join = t.service, .configured = configured, .systemd = true,
                           .thread = true };
        helper_start(&h, &hs);
        g_assert_cmpint(h.r, ==, 0);
        g_assert_cmpstr(h.parent, ==, t.service);
        g_assert_nonnull(strstr(h.message, "moved emud into"));

        /* Every thread of the helper is in G/supervisor, and G holds no process. */
        g_autofree char *sup = g_build_filename(t.service, EMU_CGROUP_SUPERVISOR, NULL);
        g_autofree char *tasks = g_strdup_printf("/proc/%d/task", (int)h.pid);
        g_autoptr(GDir) d = g_dir_open(tasks, 0, NULL);
        unsigned n_tasks = 0;
        for (const char *tid; d && (tid = g_dir_read_name(d)); n_tasks++) {
                g_autofree char *cg = cgroup_of(h.pid, (pid_t)g_ascii_strtoll(tid, NULL, 10));
                g_assert_cmpstr(cg, ==, rel(sup));
        }
        g_assert_cmpuint(n_tasks, ==, 2);
        g_autofree char *procs = get(t.service, "cgroup.procs");
        g_assert_cmpstr(procs, ==, "");
        g_autofree char *enabled = get(t.service, "cgroup.subtree_control");
        g_assert_true(has_word(enabled, "memory"));
        g_assert_true(has_word(enabled, "pids"));

        check_leaf(h.parent);
        helper_stop(&h);
        tree_remove(&t);
}

static void test_delegated(void)
{
        run_delegated("own", false);
}

static void test_delegated_configured(void)
{
        run_delegated("conf", true);
}

/*
 * systemd 254's DelegateSubgroup= starts emud one level down, in a cgroup
 * without the marker: delegated all the same, as part of the delegated tree.
 */
static void test_delegated_subgroup(void)
{
        Tree t;
        Helper h;
        if (skip_without_controllers())
                return;
        tree_make(&t, "subgroup", true, true);
        g_autofree char *sub = g_build_filename(t.service, "main", NULL);
        g_assert_cmpint(mkdir(sub, 0755), ==, 0);
        g_assert_cmpint(put(t.service, "cgroup.subtree_control", "+memory +pids"), ==, 0);
        HelperSetup hs = { .join = sub, .systemd = true };
        helper_start(&h, &hs);
        g_assert_cmpint(h.r, ==, 0);
        g_assert_cmpstr(h.parent, ==, sub);
        g_autofree char *sup = g_build_filename(sub, EMU_CGROUP_SUPERVISOR, NULL);
        g_autofree char *cg = cgroup_of(h.pid, 0);
        g_assert_cmpstr(cg, ==, rel(sup));
        helper_stop(&h);
        g_assert_cmpint(rmdir(sup), ==, 0);
        g_assert_cmpint(rmdir(sub), ==, 0);
        tree_remove(&t);
}

/*
 * In the root cgroup, which may hold processes and children at once, emud
 * stays put and only turns the controllers on (if it was us who turned them
 * on for this test, off first, to see that).
 */
static void test_root(void)
{
        Helper h;
        if (skip_without_controllers())
                return;
        if (restore_root)
                g_assert_cmpint(put(mnt, "cgroup.subtree_control", "-memory -pids"), ==, 0);
        HelperSetup hs = { .join = mnt };
        helper_start(&h, &hs);
        g_assert_cmpint(h.r, ==, 0);
        g_assert_cmpstr(h.parent, ==, mnt);
        g_autofree char *cg = cgroup_of(h.pid, 0);
        g_assert_cmpstr(cg, ==, "/");
        g_autofree char *enabled = get(mnt, "cgroup.subtree_control");
        g_assert_true(has_word(enabled, "memory") && has_word(enabled, "pids"));
        if (restore_root)
                g_assert_nonnull(strstr(h.message, "enabled memory and pids"));
        else
                g_assert_null(h.message);
        helper_stop(&h);
}

/* A cgroup-parent= elsewhere is returned as it is, and nothing moves. */
static void test_elsewhere(void)
{
        Tree t;
        Helper h;
        tree_make(&t, "else", false, true);
        g_autofree char *other = g_build_filename(t.slice, "emulators", NULL);
        g_assert_cmpint(mkdir(other, 0755), ==, 0);
        HelperSetup hs = { .join = t.service, .configured = other };
        helper_start(&h, &hs);
        g_assert_cmpint(h.r, ==, 0);
        g_assert_cmpstr(h.parent, ==, other);
        g_assert_null(h.message);
        assert_untouched(&t, h.pid);
        helper_stop(&h);
        g_assert_cmpint(rmdir(other), ==, 0);
        tree_remove(&t);
}

/* Fail with r, say so naming the file and the advice, and leave the tree alone. */
static void expect_failure(const char *name, HelperSetup hs, bool controllers, bool delegated,
                           int r, const char *file, const char *advice)
{
        Tree t;
        Helper h;
        tree_make(&t, name, controllers, delegated);
        hs.join = t.service;
        helper_start(&h, &hs);
        g_assert_cmpint(h.r, ==, r);
        g_assert_null(h.parent);
        g_assert_nonnull(h.message);
        g_assert_true(g_str_has_prefix(h.message, "emulators get no memory or pids limits: "));
        g_autofree char *path = g_build_filename(t.service, file, NULL);
        g_assert_nonnull(strstr(h.message, path));
        g_assert_nonnull(strstr(h.message, advice));
        if (r != -EOPNOTSUPP && r != -EPERM && r != -EBUSY) /* no syscall failed for those */
                g_assert_nonnull(strstr(h.message, g_strerror(-r)));
        assert_untouched(&t, h.pid);
        helper_stop(&h);
        tree_remove(&t);
}

/* Whether a cgroup v1 hierarchy holds the controller, which then cannot be in cgroup2. */
static bool in_v1(const char *controller)
{
        g_autofree char *info = NULL;
        g_assert_true(g_file_get_contents("/proc/self/mountinfo", &info, NULL, NULL));
        g_auto(GStrv) lines = g_strsplit(info, "\n", -1);
        for (char **l = lines; *l; l++) {
                const char *sep = strstr(*l, " - cgroup ");
                g_autofree char *opts = sep ? g_strconcat(",", strrchr(*l, ' ') + 1, ",", NULL)
                                            : NULL;
                g_autofree char *want = g_strconcat(",", controller, ",", NULL);
                if (opts && strstr(opts, want))
                        return true;
        }
        return false;
}

/* The advice differs: in hybrid mode no Delegate= can bring the controller. */
static void test_no_controllers(void)
{
        expect_failure("nocontrollers", (HelperSetup){ 0 }, false, true, -EOPNOTSUPP,
                       "cgroup.controllers",
                       in_v1("memory") ? "systemd.unified_cgroup_hierarchy=1" : "Delegate=yes");
}

static void test_read_only(void)
{
        if (skip_without_controllers())
                return;
        expect_failure("readonly", (HelperSetup){ .readonly = true }, true, true, -EROFS,
                       EMU_CGROUP_SUPERVISOR, "ProtectControlGroups=");
}

static void test_unprivileged(void)
{
        if (skip_without_controllers())
                return;
        expect_failure("unpriv", (HelperSetup){ .unprivileged = true }, true, true, -EACCES,
                       EMU_CGROUP_SUPERVISOR, "Delegate=yes");
}

static void test_not_delegated(void)
{
        if (skip_without_controllers())
                return;
        expect_failure("notdelegated", (HelperSetup){ .systemd = true }, true, false, -EPERM,
                       "", "Delegate=yes");
}

/* Another process in emud's cgroup: emud does not move it, and says which it is. */
static void test_busy(void)
{
        Tree t;
        Helper other, h;
        if (skip_without_controllers())
                return;
        tree_make(&t, "busy", true, true);
        HelperSetup first = { .join = t.service, .configured = "/" };
        helper_start(&other, &first); /* "/" is elsewhere: it only sits in G */
        HelperSetup hs = { .join = t.service };
        helper_start(&h, &hs);
        g_assert_cmpint(h.r, ==, -EBUSY);
        g_autofree char *pid = g_strdup_printf("pid %d ", (int)other.pid);
        g_assert_nonnull(strstr(h.message, pid));
        g_assert_nonnull(strstr(h.message, "cgroup.procs"));
        assert_untouched(&t, h.pid);
        helper_stop(&h);
        helper_stop(&other);
        tree_remove(&t);
}

static void test_no_cgroup2(void)
{
        Helper h;
        HelperSetup hs = { .no_cgroup2 = true };
        helper_start(&h, &hs);
        g_assert_cmpint(h.r, ==, -ENOMEDIUM);
        g_assert_nonnull(strstr(h.message, "no cgroup2 hierarchy"));
        g_assert_null(h.parent);
        helper_stop(&h);
}

/* ---- set-up ---- */

/* NULL when the cases can run at all, else what is missing. */
static char *unavailable(void)
{
        if (geteuid() != 0)
                return g_strdup("needs root, to make cgroups");
        mnt = find_cgroup2();
        if (!mnt)
                return g_strdup("no cgroup2 hierarchy mounted");
        g_autofree char *probe = g_strdup_printf("%s/emud-test-%d-probe", mnt, (int)getpid());
        if (mkdir(probe, 0755) < 0)
                return g_strdup_printf("cannot make a cgroup in %s: %s", mnt, g_strerror(errno));
        g_assert_cmpint(rmdir(probe), ==, 0);
        return NULL;
}

/* The delegated cases need memory and pids handed down from the cgroup2 root. */
static void prepare_controllers(void)
{
        g_autofree char *offered = get(mnt, "cgroup.controllers");
        g_autofree char *enabled = get(mnt, "cgroup.subtree_control");
        for (const char *const *c = (const char *const[]){ "memory", "pids", NULL }; *c; c++)
                if (!has_word(offered, *c)) {
                        no_controllers = g_strdup_printf(
                                "cgroup2 at %s offers no %s controller (cgroup.controllers: "
                                "\"%s\"; a cgroup v1 hierarchy holds it?)",
                                mnt, *c, offered ? offered : "?");
                        return;
                }
        if (has_word(enabled, "memory") && has_word(enabled, "pids"))
                return;
        int r = put(mnt, "cgroup.subtree_control", "+memory +pids");
        if (r < 0)
                no_controllers = g_strdup_printf("cannot enable memory and pids in "
                                                 "%s/cgroup.subtree_control: %s",
                                                 mnt, g_strerror(-r));
        restore_root = r == 0;
}

int main(int argc, char **argv)
{
        /* The leaf's process: hold until fd 3 closes. */
        if (argc > 1 && g_str_equal(argv[1], "--hold")) {
                char b;
                while (read(3, &b, 1) > 0)
                        ;
                return 0;
        }
        g_autofree char *why = unavailable();
        if (why) {
                bool tap = false;
                for (int i = 1; i < argc; i++)
                        tap = tap || g_str_equal(argv[i], "--tap");
                /* meson's TAP runner counts an exit status of 77 as an error. */
                printf(tap ? "1..0 # SKIP %s\n" : "SKIP: %s\n", why);
                return tap ? 0 : 77;
        }
        prepare_controllers();

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cgroup-parent/delegated", test_delegated);
        g_test_add_func("/cgroup-parent/delegated-configured", test_delegated_configured);
        g_test_add_func("/cgroup-parent/delegated-subgroup", test_delegated_subgroup);
        g_test_add_func("/cgroup-parent/root", test_root);
        g_test_add_func("/cgroup-parent/elsewhere", test_elsewhere);
        g_test_add_func("/cgroup-parent/no-controllers", test_no_controllers);
        g_test_add_func("/cgroup-parent/read-only", test_read_only);
        g_test_add_func("/cgroup-parent/unprivileged", test_unprivileged);
        g_test_add_func("/cgroup-parent/not-delegated", test_not_delegated);
        g_test_add_func("/cgroup-parent/busy", test_busy);
        g_test_add_func("/cgroup-parent/no-cgroup2", test_no_cgroup2);
        int r = g_test_run();

        if (restore_root) /* best effort: a dying memory cgroup can hold it a while */
                (void)put(mnt, "cgroup.subtree_control", "-memory -pids");
        /* Nothing of ours is left in the hierarchy. */
        g_autofree char *prefix = g_strdup_printf("emud-test-%d-", (int)getpid());
        g_autoptr(GDir) d = g_dir_open(mnt, 0, NULL);
        for (const char *n; d && (n = g_dir_read_name(d));)
                g_assert_false(g_str_has_prefix(n, prefix));
        return r;
}
