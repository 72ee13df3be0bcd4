/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox-test-util: small helpers for the sandbox tests, so each test file
 * holds only its checks.
 */
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox-test-util.h"

const char *const *sbt_policy_dirs(void)
{
        static char *dirs[3];
        if (!dirs[0]) {
                const char *src = g_getenv("EMUD_SOURCE_ROOT");
                g_assert_nonnull(src);
                dirs[0] = g_build_filename(src, "tests", "policy", "policies", NULL);
                dirs[1] = g_build_filename(src, "policy", "policies", NULL);
        }
        return (const char *const *)dirs;
}

const char *sbt_userns_unavailable(void)
{
        g_autofree char *max = NULL;
        if (g_file_get_contents("/proc/sys/user/max_user_namespaces", &max, NULL, NULL) &&
            g_ascii_strtoll(max, NULL, 10) == 0)
                return "user namespaces are disabled (user.max_user_namespaces = 0)";
        pid_t pid = fork();
        if (pid == 0)
                _exit(unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) < 0 ? 1 : 0);
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0
                       ? NULL
                       : "cannot unshare user+mount+pid namespaces here";
}

char *sbt_proc_status(int pid, const char *key)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/status", pid);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL))
                return NULL;
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        size_t n = strlen(key);
        for (char **l = lines; *l; l++)
                if (strncmp(*l, key, n) == 0 && (*l)[n] == ':')
                        return g_strstrip(g_strdup(*l + n + 1));
        return NULL;
}
