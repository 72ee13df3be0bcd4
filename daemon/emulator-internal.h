/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Inside the state machine: shared by emulator.c (the decisions),
 * emulator-proc.c (the process and its monitor) and emulator-qmp.c (the
 * steps in QEMU). Callbacks in the last two record facts and return to
 * emulator_advance(); only emulator.c decides.
 */

#include "emu-log.h"
#include "emulator.h"

void emulator_set_state(Emulator *e, EmuState state);
void emulator_set_reason(Emulator *e, const char *reason);
void emulator_mark(Emulator *e, unsigned mask);
void emulator_fail(Emulator *e, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
void emulator_advance(Emulator *e);
void emulator_clear_timer(Emulator *e);
void emulator_set_timer(Emulator *e, guint ms, GSourceFunc fn);
bool emulator_vm_usable(const Emulator *e);

/* emulator-proc.c */
bool emulator_launch(Emulator *e, GError **error);
void emulator_connect_monitor(Emulator *e, int fd);
void emulator_drop_monitor(Emulator *e);
void emulator_release_confinement(Emulator *e);
char *emulator_exit_message(Emulator *e, const EmuExit *ex);
void emulator_proc_init(Emulator *e);

/* emulator-qmp.c */
typedef void (*StepFunc)(Emulator *e, json_t *ret, const GError *error);
/* Run one QMP command on the VM's QEMU for e; the reply goes to step, then advance(). */
void emulator_vm_execute(Emulator *e, const char *command, json_t *args, StepFunc step);
/* A step in flight (e is busy until its reply); the reply runs step, then advance(). */
void *emulator_step_begin(Emulator *e, StepFunc step);
void emulator_step_reply(void *call, json_t *ret, const GError *error);
void emulator_find_slot(Emulator *e);
void emulator_release_slot(Emulator *e);
void emulator_add_chardev(Emulator *e);
void emulator_send_fd(Emulator *e);
void emulator_close_fd(Emulator *e);
/* device_add's arguments without the bus: driver, id, properties, chardev or fd. */
json_t *emulator_device_args(const Emulator *e);
void emulator_add_device(Emulator *e);
void emulator_del_device(Emulator *e);
void emulator_remove_chardev(Emulator *e);
/* Adoption: ask QEMU whether the device and chardev are there; sets probed. */
void emulator_probe_device(Emulator *e);

/* emulator-libvirt.c: the same steps in a domain that libvirt runs */
void emulator_libvirt_attach(Emulator *e);
void emulator_libvirt_detach(Emulator *e, StepFunc step);
void emulator_libvirt_probe(Emulator *e);
