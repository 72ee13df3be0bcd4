/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Shared between emulator.c (life cycle) and emulator-qmp.c (steps in QEMU). */

#include "emu-log.h"
#include "manager.h"

EmuLogCtx emulator_log_ctx(const Emulator *e);
void emulator_set_state(Emulator *e, EmuState state);
void emulator_set_reason(Emulator *e, const char *reason);
void emulator_fail(Emulator *e, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
void emulator_advance(Emulator *e);
void emulator_clear_timer(Emulator *e);
bool emulator_vm_usable(const Emulator *e);
void emulator_finish_kill(Emulator *e, int code, const char *msg);

typedef void (*StepFunc)(Emulator *e, json_t *ret, const GError *error);

/* Run one QMP command on the VM's QEMU for e; the reply goes to step, then advance(). */
void emulator_vm_execute(Emulator *e, const char *command, json_t *args, StepFunc step);

void emulator_find_slot(Emulator *e);
void emulator_release_slot(Emulator *e);
void emulator_add_chardev(Emulator *e);
void emulator_add_device(Emulator *e);
void emulator_del_device(Emulator *e);
void emulator_remove_chardev(Emulator *e);

/*
 * Ask QEMU whether e's device and chardev are there (adoption after an emud
 * restart): sets device_added and chardev_added from what QEMU says, then
 * calls emulator_probed().
 */
void emulator_probe_device(Emulator *e);
void emulator_probed(Emulator *e);

/* Sockets and monitor, shared with adoption (emulator-adopt.c). */
int emulator_connect_unix(const char *path);
void emulator_connect_monitor(Emulator *e, int fd);

/* The process of a plugged emulator died: restart it, or give up, by its policy. */
void emulator_crashed(Emulator *e, const EmuExit *ex);
