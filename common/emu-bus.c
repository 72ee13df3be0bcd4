/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * emu-bus: the parts of the D-Bus API that emud and emuctl share.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu-bus.h"
#include "emu-util.h"

char *emu_bus_emulator_path(const char *id)
{
        emu_autofree_c *path = NULL;
        if (sd_bus_path_encode(EMU_BUS_EMULATOR_PREFIX, id, &path) < 0)
                return NULL;
        return g_strdup(path);
}

char *emu_bus_emulator_id(const char *path)
{
        emu_autofree_c *id = NULL;
        if (sd_bus_path_decode(path, EMU_BUS_EMULATOR_PREFIX, &id) <= 0 || !id[0])
                return NULL;
        return g_strdup(id);
}

static const EmuBusColumn emulator_columns[] = {
        { "id", "ID", -20 },     { "vm", "VM", -12 },
        { "kind", "KIND", -16 }, { "state", "STATE", -11 },
        { "pid", "PID", 8 },     { "restarts", "RESTARTS", 8 },
};
G_STATIC_ASSERT(G_N_ELEMENTS(emulator_columns) == sizeof(EMU_BUS_ROW_EMULATOR) - 1);
const EmuBusList emu_bus_list_emulators = { "List", EMU_BUS_ROW_EMULATOR, emulator_columns,
                                            G_N_ELEMENTS(emulator_columns) };

static const EmuBusColumn vm_columns[] = {
        { "name", "VM", -16 },
        { "qmp", "QMP", -40 },
        { "state", "STATE", 0 },
};
G_STATIC_ASSERT(G_N_ELEMENTS(vm_columns) == sizeof(EMU_BUS_ROW_VM) - 1);
const EmuBusList emu_bus_list_vms = { "ListVMs", EMU_BUS_ROW_VM, vm_columns,
                                      G_N_ELEMENTS(vm_columns) };

static const EmuBusColumn kind_columns[] = {
        { "kind", "KIND", -18 },
        { "status", "STATUS", -12 },
        { "source", "SOURCE", -52 },
        { "note", "DESCRIPTION OR REASON", 0 },
};
G_STATIC_ASSERT(G_N_ELEMENTS(kind_columns) == sizeof(EMU_BUS_ROW_KIND) - 1);
const EmuBusList emu_bus_list_kinds = { "ListKinds", EMU_BUS_ROW_KIND, kind_columns,
                                        G_N_ELEMENTS(kind_columns) };

/* The signature of the list's array's elements, "(ssssuu)". */
static char *struct_signature(const EmuBusList *l)
{
        return g_strconcat("(", l->row, ")", NULL);
}

int emu_bus_append_list(sd_bus_message *m, const EmuBusList *l, json_t *rows)
{
        g_autofree char *element = struct_signature(l);
        int r = sd_bus_message_open_container(m, 'a', element);
        size_t i;
        json_t *row;
        json_array_foreach (rows, i, row) {
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'r', l->row);
                for (unsigned c = 0; r >= 0 && c < l->n_columns; c++) {
                        json_t *v = json_object_get(row, l->columns[c].key);
                        if (l->row[c] == 'u') {
                                uint32_t u = (uint32_t)json_integer_value(v);
                                r = sd_bus_message_append_basic(m, 'u', &u);
                        } else {
                                const char *s = json_string_value(v);
                                r = sd_bus_message_append_basic(m, 's', s ? s : "");
                        }
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

int emu_bus_read_list(sd_bus_message *m, const EmuBusList *l, json_t **ret_rows)
{
        g_autoptr(json_t) rows = json_array();
        g_autofree char *element = struct_signature(l);
        int r = sd_bus_message_enter_container(m, 'a', element);
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', l->row)) > 0) {
                json_t *row = json_object();
                json_array_append_new(rows, row);
                for (unsigned c = 0; r >= 0 && c < l->n_columns; c++) {
                        if (l->row[c] == 'u') {
                                uint32_t u = 0;
                                r = sd_bus_message_read_basic(m, 'u', &u);
                                json_object_set_new(row, l->columns[c].key, json_integer(u));
                        } else {
                                const char *s = NULL;
                                r = sd_bus_message_read_basic(m, 's', &s);
                                json_object_set_new(row, l->columns[c].key,
                                                    json_string(s ? s : ""));
                        }
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret_rows = g_steal_pointer(&rows);
        return 0;
}

static void print_cell(FILE *out, const EmuBusColumn *c, const char *text, bool last)
{
        if (last && c->width <= 0)
                fprintf(out, "%s", text);
        else
                fprintf(out, "%*s", c->width, text);
        fputc(last ? '\n' : ' ', out);
}

void emu_bus_print_list(FILE *out, const EmuBusList *l, json_t *rows)
{
        if (l->columns[0].title)
                for (unsigned c = 0; c < l->n_columns; c++)
                        print_cell(out, &l->columns[c], l->columns[c].title,
                                   c + 1 == l->n_columns);
        size_t i;
        json_t *row;
        json_array_foreach (rows, i, row) {
                for (unsigned c = 0; c < l->n_columns; c++) {
                        json_t *v = json_object_get(row, l->columns[c].key);
                        g_autofree char *text =
                                json_is_integer(v)
                                        ? g_strdup_printf("%" JSON_INTEGER_FORMAT,
                                                          json_integer_value(v))
                                        : g_strdup(json_string_value(v) ? json_string_value(v)
                                                                        : "");
                        print_cell(out, &l->columns[c], text, c + 1 == l->n_columns);
                }
        }
}
