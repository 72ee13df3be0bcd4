/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "dispatch.h"
#include "manager.h"

/*
 * libvirt's domains as emud's VMs: what the libvirt hook says (through
 * D-Bus) and what libvirt's events say, turned into the manager's calls.
 */
typedef struct LvDomains LvDomains;

/* Connects to uri in the background; sets m->libvirt. */
LvDomains *lv_domains_new(Manager *m, const char *uri);
void lv_domains_free(LvDomains *d);

/* A VM recorded by the last emud as a libvirt domain: it waits for libvirt's word. */
void lv_domains_adopt(LvDomains *d, Vm *vm);

/*
 * The hook's call: op and subop as libvirt passes them, the domain's XML.
 * "prepare" answers once the declared emulators listen (or with the first
 * error, nothing left running); every other operation answers at once.
 */
void lv_domains_hook(LvDomains *d, const char *op, const char *subop, const char *xml,
                     DoneFunc done, void *userdata);
