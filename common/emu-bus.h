/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <jansson.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

/*
 * What emud's D-Bus API looks like from both ends: the names, the object
 * path of an emulator, and the shape of the list replies. emud writes the
 * lists and emuctl reads them through the same tables, so the two cannot
 * disagree about a column.
 */
#define EMU_BUS_NAME "org.emud.Manager1"
#define EMU_BUS_MANAGER_PATH "/org/emud/Manager1"
#define EMU_BUS_MANAGER_IFACE "org.emud.Manager1"
#define EMU_BUS_EMULATOR_IFACE "org.emud.Emulator1"
#define EMU_BUS_EMULATOR_PREFIX "/org/emud/emulator"
#define EMU_BUS_ROOT "/org/emud"

/*
 * The object path of emulator id: the id escaped as D-Bus requires
 * (sd_bus_path_encode: "disk-1" is /org/emud/emulator/disk_2d1). g_free() it.
 */
char *emu_bus_emulator_path(const char *id);

/* The id in an emulator's object path; NULL when path is not one. g_free() it. */
char *emu_bus_emulator_id(const char *path);

/*
 * The row types of the three lists, "s" or "u" per column: the tables below
 * and emud's vtable both use them, so a column is declared in one place.
 */
#define EMU_BUS_ROW_EMULATOR "ssssuu"
#define EMU_BUS_ROW_VM "sss"
/* kind, status (available, unavailable, unused), source file, description or reason */
#define EMU_BUS_ROW_KIND "ssss"

typedef struct {
        const char *key;        /* JSON key (emuctl --json) */
        const char *title;      /* table heading; NULL: the table has no heading row */
        int width;              /* table column width; negative: left-aligned */
} EmuBusColumn;

typedef struct {
        const char *method;     /* the Manager1 method that returns it */
        const char *row;        /* column types, one EMU_BUS_ROW_* */
        const EmuBusColumn *columns;
        unsigned n_columns;
} EmuBusList;

extern const EmuBusList emu_bus_list_emulators; /* List */
extern const EmuBusList emu_bus_list_vms;       /* ListVMs */
extern const EmuBusList emu_bus_list_kinds;     /* ListKinds */

/* Append rows (a JSON array of objects with the list's keys) as the list's array. */
int emu_bus_append_list(sd_bus_message *m, const EmuBusList *l, json_t *rows);

/* Read the list's array from m into a new JSON array of objects. */
int emu_bus_read_list(sd_bus_message *m, const EmuBusList *l, json_t **ret_rows);

/* Print rows as a table, one line per row, headed by the titles if there are any. */
void emu_bus_print_list(FILE *out, const EmuBusList *l, json_t *rows);
