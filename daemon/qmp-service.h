/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "manager.h"

/*
 * Each VM's QMP proxy socket (<vm dir>/qmp.sock) and emud's own QMP commands
 * on it (__org.emud_*), plus the events emud adds to the stream:
 * __org.emud_EMULATOR_STATE and __org.emud_EMULATOR_EVENT.
 */
bool qmp_service_start(Vm *vm, GError **error);
void qmp_service_stop(Vm *vm);

/* An emulator's state or pid changed: tell the VM's proxy clients. */
void qmp_service_emulator_state(Emulator *e);

/* The seccomp supervisor stopped (or, in log mode, let through) a syscall. */
void qmp_service_emulator_seccomp(Emulator *e, const EmuSeccompReport *r, const char *message);

/* The emulator's monitor connection is about to be freed: answer what it still owes. */
void qmp_service_monitor_gone(Emulator *e);

/* An event from the emulator's own QMP monitor. */
void qmp_service_emulator_event(Emulator *e, const char *name, json_t *data);

char *qmp_service_socket_path(const Vm *vm);
