/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Shared by the sandbox integration tests: paths, policy dirs, host capability checks. */
#include <glib.h>
#include <stdbool.h>

/* { tests/policy/policies, policy/policies, NULL } from the source tree. */
const char *const *sbt_policy_dirs(void);

/* NULL when user namespaces can be made here, else why not. */
const char *sbt_userns_unavailable(void);

/* The value of "Key:" in /proc/PID/status, or NULL. */
char *sbt_proc_status(int pid, const char *key);
