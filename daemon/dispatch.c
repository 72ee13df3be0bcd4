/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dispatch: the queues that carry what the state machine recorded to its
 * observers, once per main-loop pass (see dispatch.h).
 */
#include "dispatch.h"

typedef struct {
        DoneFunc done;
        void *userdata;
        GError *error;
} Answer;

typedef struct {
        char *vm;
        char *name;
        json_t *data;
} Event;

struct Dispatch {
        const DispatchOps *ops;
        void *userdata;
        GPtrArray *dirty;       /* objects in the order they were first marked */
        GHashTable *masks;      /* object → mask */
        GPtrArray *finished;
        GQueue events;
        GQueue answers;
        bool poked;
        guint idle;
        bool running;
};

static gboolean on_idle(gpointer userdata)
{
        Dispatch *d = userdata;
        d->idle = 0;
        dispatch_run(d);
        return G_SOURCE_REMOVE;
}

static void schedule(Dispatch *d)
{
        if (!d->idle && !d->running)
                d->idle = g_idle_add_full(G_PRIORITY_HIGH, on_idle, d, NULL);
}

Dispatch *dispatch_new(const DispatchOps *ops, void *userdata)
{
        Dispatch *d = g_new0(Dispatch, 1);
        d->ops = ops;
        d->userdata = userdata;
        d->dirty = g_ptr_array_new();
        d->masks = g_hash_table_new(NULL, NULL);
        d->finished = g_ptr_array_new();
        g_queue_init(&d->events);
        g_queue_init(&d->answers);
        return d;
}

static void event_free(Event *ev)
{
        g_free(ev->vm);
        g_free(ev->name);
        json_decref(ev->data);
        g_free(ev);
}

static void answer_free(Answer *a)
{
        g_clear_error(&a->error);
        g_free(a);
}

void dispatch_free(Dispatch *d)
{
        if (!d)
                return;
        if (d->idle)
                g_source_remove(d->idle);
        g_ptr_array_unref(d->dirty);
        g_hash_table_unref(d->masks);
        g_ptr_array_unref(d->finished);
        g_queue_clear_full(&d->events, (GDestroyNotify)event_free);
        g_queue_clear_full(&d->answers, (GDestroyNotify)answer_free);
        g_free(d);
}

void dispatch_mark(Dispatch *d, void *object, unsigned mask)
{
        gpointer old = NULL;
        if (!g_hash_table_lookup_extended(d->masks, object, NULL, &old))
                g_ptr_array_add(d->dirty, object);
        g_hash_table_insert(d->masks, object, GUINT_TO_POINTER(GPOINTER_TO_UINT(old) | mask));
        schedule(d);
}

void dispatch_forget(Dispatch *d, void *object)
{
        if (g_hash_table_remove(d->masks, object))
                g_ptr_array_remove(d->dirty, object);
        g_ptr_array_remove(d->finished, object);
}

void dispatch_collect(Dispatch *d, void *object)
{
        if (!g_ptr_array_find(d->finished, object, NULL))
                g_ptr_array_add(d->finished, object);
        schedule(d);
}

void dispatch_event(Dispatch *d, const char *vm, const char *name, json_t *data)
{
        Event *ev = g_new0(Event, 1);
        ev->vm = g_strdup(vm);
        ev->name = g_strdup(name);
        ev->data = data;
        g_queue_push_tail(&d->events, ev);
        schedule(d);
}

void dispatch_done(Dispatch *d, DoneFunc done, void *userdata, const GError *error)
{
        if (!done)
                return;
        Answer *a = g_new0(Answer, 1);
        a->done = done;
        a->userdata = userdata;
        a->error = error ? g_error_copy(error) : NULL;
        g_queue_push_tail(&d->answers, a);
        schedule(d);
}

void dispatch_poke(Dispatch *d)
{
        d->poked = true;
        schedule(d);
}

bool dispatch_pending(const Dispatch *d)
{
        return d->poked || d->dirty->len || d->finished->len || d->events.length ||
               d->answers.length;
}

/* One round: changes, events, collection, the owner's own flush, then the answers. */
static void run_once(Dispatch *d)
{
        d->poked = false;
        while (d->dirty->len) {
                void *object = g_ptr_array_steal_index(d->dirty, 0);
                unsigned mask = GPOINTER_TO_UINT(g_hash_table_lookup(d->masks, object));
                g_hash_table_remove(d->masks, object);
                d->ops->changed(d->userdata, object, mask);
        }
        Event *ev;
        while ((ev = g_queue_pop_head(&d->events))) {
                d->ops->event(d->userdata, ev->vm, ev->name, ev->data);
                event_free(ev);
        }
        while (d->finished->len) {
                void *object = g_ptr_array_steal_index(d->finished, 0);
                /* Whatever it marked on its way out was flushed above or is moot now. */
                if (g_hash_table_remove(d->masks, object))
                        g_ptr_array_remove(d->dirty, object);
                d->ops->collect(d->userdata, object);
        }
        d->ops->flushed(d->userdata);
        Answer *a;
        while ((a = g_queue_pop_head(&d->answers))) {
                a->done(a->userdata, a->error);
                answer_free(a);
        }
}

void dispatch_run(Dispatch *d)
{
        if (d->running)
                return;
        d->running = true;
        /* An answer can cause more work (a QMP client's next command); bounded anyway. */
        for (int round = 0; round < 16 && dispatch_pending(d); round++)
                run_once(d);
        d->running = false;
        if (dispatch_pending(d))
                schedule(d);
}
