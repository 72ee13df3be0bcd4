/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The dispatch pass between the state machine and its observers: changes
 * are coalesced per object, everything is delivered after the recording
 * callback returned, in the order changes, events, collection, flush,
 * answers; an answer that records more work gets another round.
 */
#include <glib.h>

#include "dispatch.h"

typedef struct {
        GString *log;
        Dispatch *d;
        bool answer_records; /* the first answer marks an object again */
} Fixture;

static void on_changed(void *userdata, void *object, unsigned mask)
{
        Fixture *f = userdata;
        g_string_append_printf(f->log, "changed %s %u;", (const char *)object, mask);
}

static void on_event(void *userdata, const char *vm, const char *name, json_t *data)
{
        Fixture *f = userdata;
        g_string_append_printf(f->log, "event %s %s %d;", vm, name,
                               (int)json_integer_value(data));
}

static void on_collect(void *userdata, void *object)
{
        Fixture *f = userdata;
        g_string_append_printf(f->log, "collect %s;", (const char *)object);
}

static void on_flushed(void *userdata)
{
        Fixture *f = userdata;
        g_string_append(f->log, "flushed;");
}

static const DispatchOps ops = { on_changed, on_event, on_collect, on_flushed };

static void on_done(void *userdata, const GError *error)
{
        Fixture *f = userdata;
        g_string_append_printf(f->log, "done %s;", error ? error->message : "ok");
        if (f->answer_records) {
                f->answer_records = false;
                dispatch_mark(f->d, (void *)"c", 8);
        }
}

static void setup(Fixture *f, gconstpointer data)
{
        f->log = g_string_new(NULL);
        f->d = dispatch_new(&ops, f);
}

static void teardown(Fixture *f, gconstpointer data)
{
        dispatch_free(f->d);
        g_string_free(f->log, TRUE);
}

/* Run the main loop until the idle pass has run. */
static void iterate(void)
{
        while (g_main_context_iteration(NULL, FALSE))
                ;
}

static void test_order_and_coalescing(Fixture *f, gconstpointer data)
{
        static char a[] = "a", b[] = "b";
        g_autoptr(GError) err = g_error_new_literal(G_FILE_ERROR, G_FILE_ERROR_FAILED, "no");
        dispatch_done(f->d, on_done, f, err);
        dispatch_mark(f->d, a, 1);
        dispatch_event(f->d, "vm1", "E1", json_integer(1));
        dispatch_mark(f->d, b, 2);
        dispatch_mark(f->d, a, 4);
        dispatch_collect(f->d, b);
        dispatch_event(f->d, "vm1", "E2", json_integer(2));
        /* Nothing is delivered from inside the recording calls. */
        g_assert_cmpstr(f->log->str, ==, "");
        g_assert_true(dispatch_pending(f->d));
        iterate();
        g_assert_cmpstr(f->log->str, ==,
                        "changed a 5;changed b 2;event vm1 E1 1;event vm1 E2 2;collect b;"
                        "flushed;done no;");
        g_assert_false(dispatch_pending(f->d));
}

static void test_forget(Fixture *f, gconstpointer data)
{
        static char a[] = "a";
        dispatch_mark(f->d, a, 1);
        dispatch_collect(f->d, a);
        dispatch_forget(f->d, a);
        g_assert_false(dispatch_pending(f->d));
        iterate();
        g_assert_cmpstr(f->log->str, ==, ""); /* nothing left to say */
}

static void test_answer_makes_work(Fixture *f, gconstpointer data)
{
        f->answer_records = true;
        dispatch_done(f->d, on_done, f, NULL);
        dispatch_run(f->d);
        g_assert_cmpstr(f->log->str, ==, "flushed;done ok;changed c 8;flushed;");
        g_assert_false(dispatch_pending(f->d));
}

static void test_poke_and_null_answer(Fixture *f, gconstpointer data)
{
        dispatch_done(f->d, NULL, f, NULL); /* a request nobody waits for */
        g_assert_false(dispatch_pending(f->d));
        dispatch_poke(f->d);
        iterate();
        g_assert_cmpstr(f->log->str, ==, "flushed;");
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add("/dispatch/order-and-coalescing", Fixture, NULL, setup,
                   test_order_and_coalescing, teardown);
        g_test_add("/dispatch/forget", Fixture, NULL, setup, test_forget, teardown);
        g_test_add("/dispatch/answer-makes-work", Fixture, NULL, setup, test_answer_makes_work,
                   teardown);
        g_test_add("/dispatch/poke", Fixture, NULL, setup, test_poke_and_null_answer, teardown);
        return g_test_run();
}
