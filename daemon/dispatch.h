/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

/*
 * The once-per-main-loop-pass queues between the state machine and the rest
 * of emud (systemd's dbus, gc and run queues). The state machine only
 * records: which objects changed and how (a dirty mask per object), which
 * are finished, which requests it answered and which events it saw. The
 * owner's flush runs from a high-priority idle source, after the callback
 * that recorded them has returned, so that nothing it calls can re-enter
 * the state machine, and so that five changes in one pass cost one flush.
 */
typedef struct Dispatch Dispatch;

/*
 * What the queued objects are: each struct that goes through a Dispatch
 * starts with one of these, so that the owner's callbacks can tell them apart.
 */
typedef enum {
        DISPATCH_VM = 1,
        DISPATCH_EMULATOR,
} DispatchType;

/* The answer to a long request (AddVM, Spawn, Kill); error is NULL on success. */
typedef void (*DoneFunc)(void *userdata, const GError *error);

typedef struct {
        /* Called with each dirty object and its mask; the mask is cleared before. */
        void (*changed)(void *userdata, void *object, unsigned mask);
        /* Called with each event, in the order recorded. */
        void (*event)(void *userdata, const char *vm, const char *name, json_t *data);
        /* Called with each finished object, after every change; it frees it. */
        void (*collect)(void *userdata, void *object);
        /* Called once per pass after the rest, before the answers go out. */
        void (*flushed)(void *userdata);
} DispatchOps;

Dispatch *dispatch_new(const DispatchOps *ops, void *userdata);
/* Drops what is queued: answers are not sent, finished objects are not collected. */
void dispatch_free(Dispatch *d);

void dispatch_mark(Dispatch *d, void *object, unsigned mask);
/* Forget object's pending changes: it is about to be freed by someone else. */
void dispatch_forget(Dispatch *d, void *object);
void dispatch_collect(Dispatch *d, void *object);
/* data is stolen. */
void dispatch_event(Dispatch *d, const char *vm, const char *name, json_t *data);
/* error is copied; NULL for success. */
void dispatch_done(Dispatch *d, DoneFunc done, void *userdata, const GError *error);
/* Ask for a flush with nothing marked (the owner's own state changed). */
void dispatch_poke(Dispatch *d);

/* Run the flush now, until nothing is queued (shutdown, tests). */
void dispatch_run(Dispatch *d);
bool dispatch_pending(const Dispatch *d);
