/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "manager.h"

/*
 * Each VM's QMP proxy socket (<vm dir>/qmp.sock) and emud's own QMP commands
 * on it (__org.emud_*), plus the events emud adds to the stream:
 * __org.emud_EMULATOR_STATE, _EVENT and _SECCOMP. A front end (its commands
 * call the manager) and an observer (it learns of changes once per pass).
 */
typedef struct QmpService QmpService;

QmpService *qmp_service_new(Manager *m);
void qmp_service_free(QmpService *qs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpService, qmp_service_free)

/* The VM's proxy socket path; NULL with error when the VM has none. g_free() it. */
char *qmp_service_socket(QmpService *qs, const char *vm, GError **error);
