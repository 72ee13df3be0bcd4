/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * seccomp-watch: the user-space half of SECCOMP_RET_USER_NOTIF.
 *
 * The filter sends every syscall outside the policy here, so the three
 * modes share one filter and differ only in the answer: enforce replies
 * with an error (and kills through the pidfd when the policy says kill),
 * log and learn reply SECCOMP_USER_NOTIF_FLAG_CONTINUE. CONTINUE is only
 * safe because nothing here makes a security decision on the arguments:
 * the filter already decided the call is not covered by the policy, and in
 * log/learn mode the admin asked for it to run anyway.
 *
 * The listener signals POLLHUP once no task uses the filter any more; the
 * watch then stops itself, so a dead emulator leaves no busy source behind.
 */
#include <errno.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <glib-unix.h>

#include "emu-util.h"
#include "policy-names.h"
#include "seccomp-watch.h"

struct EmuSeccompWatch {
        int fd;
        EmuSeccompMode mode;
        int pidfd;
        int deny_errno;
        gboolean deny_kill;
        guint source;
        guint64 count;
        GHashTable *seen;       /* syscall name → NULL */
        EmuSeccompReportFunc cb;
        void *userdata;
        struct seccomp_notif *req;
        struct seccomp_notif_resp *resp;
};

static const char *const mode_names[] = { "enforce", "log", "learn" };

const char *emu_seccomp_mode_name(EmuSeccompMode mode)
{
        return (unsigned)mode < G_N_ELEMENTS(mode_names) ? mode_names[mode] : "?";
}

gboolean emu_seccomp_mode_from_name(const char *name, EmuSeccompMode *ret_mode)
{
        for (size_t i = 0; name && i < G_N_ELEMENTS(mode_names); i++)
                if (g_str_equal(name, mode_names[i])) {
                        *ret_mode = (EmuSeccompMode)i;
                        return TRUE;
                }
        return FALSE;
}

static void handle(EmuSeccompWatch *w)
{
        struct seccomp_notif *req = w->req;
        struct seccomp_notif_resp *resp = w->resp;

        memset(req, 0, sizeof(*req));
        /* ENOENT: the calling thread died after the wakeup; nothing to answer. */
        if (seccomp_notify_receive(w->fd, req) < 0)
                return;
        w->count++;

        g_autofree char *resolved = seccomp_syscall_resolve_num_arch(req->data.arch, req->data.nr);
        g_autofree char *name = resolved ? g_strdup(resolved)
                                         : g_strdup_printf("syscall_%d", req->data.nr);
        bool first = !g_hash_table_contains(w->seen, name);
        if (first)
                g_hash_table_add(w->seen, g_strdup(name));

        memset(resp, 0, sizeof(*resp));
        resp->id = req->id;
        EmuSeccompReport rep = {
                .pid = (pid_t)req->pid,
                .nr = req->data.nr,
                .name = name,
        };
        memcpy(rep.args, req->data.args, sizeof(rep.args));
        if (w->mode == EMU_SECCOMP_ENFORCE) {
                resp->error = -w->deny_errno;
                rep.error = w->deny_errno;
                rep.verdict = w->deny_kill ? EMU_SECCOMP_DENIED_KILLED : EMU_SECCOMP_DENIED;
        } else {
                resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
                rep.verdict = EMU_SECCOMP_ALLOWED;
        }
        /*
         * Kill before answering, so a denied call cannot even see its error
         * return and try something else; the answer then fails with ENOENT,
         * which is fine.
         */
        if (w->mode == EMU_SECCOMP_ENFORCE && w->deny_kill && w->pidfd >= 0)
                (void)pidfd_send_signal(w->pidfd, SIGKILL, NULL, 0);
        (void)seccomp_notify_respond(w->fd, resp);

        if (w->cb && (w->mode == EMU_SECCOMP_ENFORCE || first)) {
                g_autofree char *call = emu_syscall_format(req->data.nr, name, rep.args);
                rep.call = call;
                w->cb(&rep, w->userdata);
        }
}

static gboolean on_listener(int fd, GIOCondition cond, void *userdata)
{
        EmuSeccompWatch *w = userdata;

        if (cond & G_IO_IN)
                handle(w);
        if (cond & (G_IO_HUP | G_IO_ERR | G_IO_NVAL)) {
                w->source = 0;
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

EmuSeccompWatch *emu_seccomp_watch_new(int listener_fd, EmuSeccompMode mode, int pidfd,
                                       EmuSeccompReportFunc cb, void *userdata)
{
        EmuSeccompWatch *w = g_new0(EmuSeccompWatch, 1);

        w->fd = listener_fd;
        w->mode = mode;
        w->pidfd = pidfd;
        w->deny_errno = EPERM;
        w->deny_kill = TRUE;
        w->cb = cb;
        w->userdata = userdata;
        w->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        /* Sized by the kernel, not by our headers: the structs may grow. */
        if (seccomp_notify_alloc(&w->req, &w->resp) < 0)
                g_error("seccomp_notify_alloc: out of memory");
        w->source = emu_fd_watch(listener_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_listener, w);
        return w;
}

void emu_seccomp_watch_free(EmuSeccompWatch *w)
{
        if (!w)
                return;
        if (w->source)
                g_source_remove(w->source);
        emu_close(w->fd);
        seccomp_notify_free(w->req, w->resp);
        g_hash_table_unref(w->seen);
        g_free(w);
}

void emu_seccomp_watch_set_deny(EmuSeccompWatch *w, int error, gboolean kill)
{
        w->deny_errno = error > 0 ? error : EPERM;
        w->deny_kill = kill;
}

GHashTable *emu_seccomp_watch_seen(EmuSeccompWatch *w)
{
        return w->seen;
}

guint64 emu_seccomp_watch_count(EmuSeccompWatch *w)
{
        return w->count;
}
