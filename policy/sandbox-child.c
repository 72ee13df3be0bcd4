/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox-child: the child half of confinement, run between clone3() and
 * execve(). It replays the plan the parent computed (sandbox-plan.h) with
 * raw syscalls only: no allocation, no stdio, no locks, since the parent
 * may have had other threads holding them at the time of the clone.
 *
 * Order matters and follows DESIGN.md, with two forced deviations. The
 * mount sources are cloned (open_tree) first, while the fsuid is still
 * root's, so an image under a root-only directory can be bound. And with a
 * user namespace the switch to the unprivileged ids comes next, as soon as
 * the parent has written the id maps, because the files and directories the
 * child creates in its tmpfs root must belong to a mapped id (else mkdir
 * fails with EOVERFLOW). Capabilities in the new namespace survive that
 * switch (the old uid was not the namespace's root), so mounts still work,
 * and they are dropped at the caps step as usual.
 *
 * Mounts use the new mount API: open_tree(OPEN_TREE_CLONE) takes detached
 * copies of every source while the host tree is intact, so the staging
 * tmpfs can then be mounted anywhere (over /tmp) without hiding a source,
 * and mount_setattr() adds read-only/nosuid/nodev/noexec without having to
 * restate the flags the kernel locks on mounts inherited from the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox-plan.h"

#define STAGE "/tmp"
#define HOSTNAME "emu"

#define FAIL(f, s, i)                                                                           \
        do {                                                                                    \
                (f)->step = (s);                                                                \
                (f)->error = errno;                                                             \
                (f)->index = (i);                                                               \
                return -(f)->error;                                                             \
        } while (0)

static void close_all(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0) {
                        close(fds[i]);
                        fds[i] = -1;
                }
}

/*
 * Phase one, still with the parent's (root's) fsuid: detached copies of every
 * source. Path lookup to the image then needs no permission of the
 * unprivileged uid on the directories above it, only on the file itself.
 */
static int clone_sources(const EmuSandbox *sb, int *trees, EmuChildFailure *f)
{
        int r = 0;

        for (size_t i = 0; i < sb->n_mounts; i++)
                trees[i] = -1;
        /* Nothing we do may propagate back to the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                FAIL(f, EMU_STEP_MOUNTS, -1);
        for (size_t i = 0; i < sb->n_mounts; i++) {
                const EmuMountOp *op = &sb->mounts[i];
                if (op->kind != EMU_MOUNT_BIND)
                        continue;
                trees[i] = open_tree(AT_FDCWD, op->src,
                                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
                struct mount_attr attr = { .attr_set = op->attr };
                if (trees[i] < 0 || mount_setattr(trees[i], "", AT_EMPTY_PATH | AT_RECURSIVE,
                                                  &attr, sizeof(attr)) < 0) {
                        r = -errno;
                        close_all(trees, sb->n_mounts);
                        errno = -r;
                        FAIL(f, EMU_STEP_MOUNTS, (int)i);
                }
        }
        return 0;
}

/* Phase two: the root, built in a staging tmpfs and pivoted into. Consumes trees. */
static int build_root(const EmuSandbox *sb, int *trees, EmuChildFailure *f)
{
        int r = 0;

        if (mount("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") < 0 ||
            chdir(STAGE) < 0) {
                r = -errno;
                close_all(trees, sb->n_mounts);
                errno = -r;
                FAIL(f, EMU_STEP_MOUNTS, -1);
        }
        for (char **d = sb->mkdirs; *d; d++)
                if (mkdir(*d, 0755) < 0 && errno != EEXIST) {
                        r = -errno;
                        close_all(trees, sb->n_mounts);
                        errno = -r;
                        FAIL(f, EMU_STEP_MOUNTS, -1);
                }
        for (char **p = sb->mkfiles; *p; p++) {
                int fd = open(*p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0) {
                        r = -errno;
                        close_all(trees, sb->n_mounts);
                        errno = -r;
                        FAIL(f, EMU_STEP_MOUNTS, -1);
                }
                close(fd);
        }
        for (size_t i = 0; i < sb->n_mounts; i++) {
                const EmuMountOp *op = &sb->mounts[i];
                int k = 0;
                if (op->kind == EMU_MOUNT_BIND)
                        k = move_mount(trees[i], "", AT_FDCWD, op->dst, MOVE_MOUNT_F_EMPTY_PATH);
                else if (op->kind == EMU_MOUNT_SYMLINK)
                        k = symlink(op->src, op->dst);
                else
                        /* While the host's /proc is still visible, as the kernel requires. */
                        k = mount("proc", op->dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                  NULL);
                if (k < 0) {
                        r = -errno;
                        close_all(trees, sb->n_mounts);
                        errno = -r;
                        FAIL(f, EMU_STEP_MOUNTS, (int)i);
                }
        }
        close_all(trees, sb->n_mounts);

        struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                             MOUNT_ATTR_NODEV };
        if (mount_setattr(AT_FDCWD, ".", 0, &ro, sizeof(ro)) < 0)
                FAIL(f, EMU_STEP_MOUNTS, -1);
        /* The staging tmpfs becomes "/", the old root lands on top of it and is detached. */
        if (syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
            chdir("/") < 0)
                FAIL(f, EMU_STEP_MOUNTS, -1);
        return 0;
}

static int switch_ids(const EmuSandbox *sb, EmuChildFailure *f)
{
        /* Host root's supplementary groups would otherwise stay, unmapped but effective. */
        uid_t uid = sb->userns ? sb->inner_uid : sb->uid;
        gid_t gid = sb->userns ? sb->inner_gid : sb->gid;
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0)
                FAIL(f, EMU_STEP_IDS, -1);
        return 0;
}

int emu_sandbox_child_apply(const EmuSandbox *sb, int sync_fd, int handoff_fd,
                            EmuChildFailure *f)
{
        int trees[EMU_MAX_MOUNTS];
        char go;
        ssize_t n;
        int r;

        /* The parent writes a byte once the id maps are in place. */
        do
                n = read(sync_fd, &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) {
                if (n == 0)
                        errno = EPIPE;
                FAIL(f, EMU_STEP_SYNC, -1);
        }

        if ((sb->steps & EMU_SANDBOX_MOUNTS) && (r = clone_sources(sb, trees, f)) < 0)
                return r;
        if (sb->userns) {
                if ((r = switch_ids(sb, f)) < 0) {
                        close_all(trees, sb->n_mounts);
                        return r;
                }
                /* Now, in the leaf clone3 put us in, so the leaf is our cgroup root. */
                if (unshare(CLONE_NEWCGROUP) < 0 ||
                    sethostname(HOSTNAME, sizeof(HOSTNAME) - 1) < 0) {
                        r = -errno;
                        close_all(trees, sb->n_mounts);
                        errno = -r;
                        FAIL(f, EMU_STEP_NAMESPACES, -1);
                }
        }
        if ((sb->steps & EMU_SANDBOX_MOUNTS) && (r = build_root(sb, trees, f)) < 0)
                return r;
        if (sb->steps & EMU_SANDBOX_RLIMITS) {
                struct rlimit core = { 0, 0 };
                if (setrlimit(RLIMIT_NOFILE, &sb->nofile) < 0 ||
                    setrlimit(RLIMIT_NPROC, &sb->nproc) < 0 || setrlimit(RLIMIT_CORE, &core) < 0)
                        FAIL(f, EMU_STEP_RLIMITS, -1);
        }
        if (sb->steps & EMU_SANDBOX_CAPS) {
                /* Needs CAP_SETPCAP, so before a uid switch outside a user namespace. */
                for (int cap = 0; cap <= sb->cap_last; cap++)
                        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                                FAIL(f, EMU_STEP_CAPS, cap);
        }
        if (!sb->userns && (sb->steps & EMU_SANDBOX_IDS) && (r = switch_ids(sb, f)) < 0)
                return r;
        if (sb->steps & EMU_SANDBOX_CAPS) {
                struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
                struct __user_cap_data_struct data[2] = { { 0 } };
                if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 ||
                    syscall(SYS_capset, &hdr, data) < 0)
                        FAIL(f, EMU_STEP_CAPS, -1);
        }
        if ((sb->steps & (EMU_SANDBOX_CAPS | EMU_SANDBOX_SECCOMP)) &&
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                FAIL(f, EMU_STEP_CAPS, -1);
        if (sb->bpf) {
                unsigned flags = sb->notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
                if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &sb->bpf->prog) < 0)
                        FAIL(f, EMU_STEP_SECCOMP, -1);
                /*
                 * The listener is now the lowest free fd, which the parent knows;
                 * closing the handoff socket (always allowed) tells it to fetch it.
                 */
                if (sb->notify)
                        close(handoff_fd);
        }
        return 0;
}
