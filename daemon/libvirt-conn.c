/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libvirt-conn: emud's connection to libvirtd, kept off the main loop.
 *
 * libvirt's calls block (on libvirtd, and through it on a domain's job
 * lock, which a running hook holds), so none runs on the main loop: a
 * worker thread makes them one at a time. libvirt's default event loop is
 * GLib's default main context, which is emud's main loop: its event
 * callbacks (and keepalives) run there, so they never call into libvirt;
 * they queue a job for the worker or a report for the main loop. Reports
 * carry a reference to the connection, and are dropped once it is freed.
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>

#include "domain-xml.h"
#include "emu-error.h"
#include "emu-log.h"
#include "libvirt-conn.h"
#include "qmp-codec.h"

/* After a failed or lost connection; a call that needs libvirt connects at once anyway. */
#define LV_RETRY_MS 1000

struct LvConn {
        char *uri;
        const LvConnOps *ops;
        void *userdata;
        GMainContext *main;
        GThreadPool *worker;
        bool closed;            /* main loop only: lv_conn_free() ran */
        guint retry;            /* main loop only: the next open */
        gpointer current;       /* atomic: vc, for telling a stale close callback */
        /* The worker's only. */
        virConnectPtr vc;
        int cb_lifecycle, cb_removed, cb_metadata;
};

typedef enum { JOB_OPEN, JOB_XML, JOB_ATTACH, JOB_DETACH } JobType;

typedef struct {
        JobType type;
        char *domain;
        char *arg;              /* device XML, or alias */
        bool started;
        LvDoneFunc done;
        void *userdata;
} Job;

typedef enum {
        REPORT_CONNECTED,
        REPORT_DISCONNECTED,
        REPORT_DOMAINS,
        REPORT_XML,
        REPORT_STOPPED,
        REPORT_REMOVED,
        REPORT_DONE,
} ReportType;

typedef struct {
        LvConn *c;
        ReportType type;
        char *name;
        char *text;
        bool started;
        char **names, **xmls, **starting;
        LvDoneFunc done;
        void *userdata;
        GError *error;
} Report;

static LvConn *lv_ref(LvConn *c)
{
        return g_atomic_rc_box_acquire(c);
}

static void lv_clear(gpointer p)
{
        LvConn *c = p;
        g_free(c->uri);
        g_main_context_unref(c->main);
}

static void lv_unref(LvConn *c)
{
        g_atomic_rc_box_release_full(c, lv_clear);
}

static void report_free(gpointer p)
{
        Report *r = p;
        lv_unref(r->c);
        g_free(r->name);
        g_free(r->text);
        g_strfreev(r->names);
        g_strfreev(r->xmls);
        g_strfreev(r->starting);
        g_clear_error(&r->error);
        g_free(r);
}

static void schedule_open(LvConn *c, guint ms);

static gboolean deliver(gpointer p)
{
        Report *r = p;
        LvConn *c = r->c;
        if (c->closed)
                return G_SOURCE_REMOVE;
        const LvConnOps *ops = c->ops;
        switch (r->type) {
        case REPORT_CONNECTED:
                ops->connected(c->userdata);
                break;
        case REPORT_DISCONNECTED:
                ops->disconnected(c->userdata, r->text);
                schedule_open(c, LV_RETRY_MS);
                break;
        case REPORT_DOMAINS:
                ops->domains(c->userdata, r->names, r->xmls, r->starting);
                break;
        case REPORT_XML:
                ops->domain_xml(c->userdata, r->name, r->text, r->started);
                break;
        case REPORT_STOPPED:
                ops->domain_stopped(c->userdata, r->name, r->text);
                break;
        case REPORT_REMOVED:
                ops->device_removed(c->userdata, r->name, r->text);
                break;
        case REPORT_DONE:
                r->done(r->userdata, r->error);
                break;
        }
        return G_SOURCE_REMOVE;
}

/*
 * From any thread; always queued. (g_main_context_invoke() would run it at
 * once on a thread that can acquire the context, as the worker can before
 * emud's loop runs.)
 */
static void post(LvConn *c, Report *r)
{
        r->c = lv_ref(c);
        GSource *source = g_idle_source_new();
        g_source_set_priority(source, G_PRIORITY_DEFAULT);
        g_source_set_callback(source, deliver, r, report_free);
        g_source_attach(source, c->main);
        g_source_unref(source);
}

static void post_simple(LvConn *c, ReportType type, const char *name, const char *text)
{
        Report *r = g_new0(Report, 1);
        r->type = type;
        r->name = g_strdup(name);
        r->text = g_strdup(text);
        post(c, r);
}

static void push(LvConn *c, Job *job)
{
        g_thread_pool_push(c->worker, job, NULL);
}

static void job_free(Job *job)
{
        g_free(job->domain);
        g_free(job->arg);
        g_free(job);
}

static const char *last_error(void)
{
        const char *msg = virGetLastErrorMessage();
        return msg ? msg : "unknown libvirt error";
}

/* ---- events: libvirt's callbacks, on the main loop ---------------------- */

static const char *stop_reason(int detail)
{
        switch (detail) {
        case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: return "shut down";
        case VIR_DOMAIN_EVENT_STOPPED_DESTROYED: return "destroyed";
        case VIR_DOMAIN_EVENT_STOPPED_CRASHED: return "crashed";
        case VIR_DOMAIN_EVENT_STOPPED_MIGRATED: return "migrated";
        case VIR_DOMAIN_EVENT_STOPPED_SAVED: return "saved";
        case VIR_DOMAIN_EVENT_STOPPED_FAILED: return "failed";
        default: return "stopped";
        }
}

static int on_lifecycle(virConnectPtr vc, virDomainPtr dom, int event, int detail, void *opaque)
{
        LvConn *c = opaque;
        if (event == VIR_DOMAIN_EVENT_STARTED) {
                Job *job = g_new0(Job, 1);
                job->type = JOB_XML;
                job->domain = g_strdup(virDomainGetName(dom));
                job->started = true;
                push(c, job);
        } else if (event == VIR_DOMAIN_EVENT_STOPPED) {
                post_simple(c, REPORT_STOPPED, virDomainGetName(dom), stop_reason(detail));
        }
        return 0;
}

static void on_device_removed(virConnectPtr vc, virDomainPtr dom, const char *alias,
                              void *opaque)
{
        post_simple(opaque, REPORT_REMOVED, virDomainGetName(dom), alias);
}

static void on_metadata(virConnectPtr vc, virDomainPtr dom, int type, const char *nsuri,
                        void *opaque)
{
        LvConn *c = opaque;
        if (type != VIR_DOMAIN_METADATA_ELEMENT || g_strcmp0(nsuri, EMU_LIBVIRT_NS) != 0)
                return;
        Job *job = g_new0(Job, 1);
        job->type = JOB_XML;
        job->domain = g_strdup(virDomainGetName(dom));
        push(c, job);
}

static void on_close(virConnectPtr vc, int reason, void *opaque)
{
        LvConn *c = opaque;
        if (vc != g_atomic_pointer_get(&c->current))
                return; /* a connection the worker has replaced already */
        static const char *const why[] = { "libvirtd closed the connection",
                                           "end of file from libvirtd",
                                           "libvirtd did not answer keepalives",
                                           "the client closed it" };
        post_simple(c, REPORT_DISCONNECTED, NULL,
                    reason >= 0 && reason < (int)G_N_ELEMENTS(why) ? why[reason] : "closed");
}

static void no_op(void *opaque)
{
}

/* ---- jobs: on the worker thread ----------------------------------------- */

static void drop_connection(LvConn *c)
{
        if (!c->vc)
                return;
        virConnectUnregisterCloseCallback(c->vc, on_close);
        if (c->cb_lifecycle >= 0)
                virConnectDomainEventDeregisterAny(c->vc, c->cb_lifecycle);
        if (c->cb_removed >= 0)
                virConnectDomainEventDeregisterAny(c->vc, c->cb_removed);
        if (c->cb_metadata >= 0)
                virConnectDomainEventDeregisterAny(c->vc, c->cb_metadata);
        c->cb_lifecycle = c->cb_removed = c->cb_metadata = -1;
        virConnectClose(c->vc);
        c->vc = NULL;
        g_atomic_pointer_set(&c->current, NULL);
}

/*
 * A domain libvirt is still starting: active (it has an id from its
 * prepare hook on) but QEMU not yet running or not yet set up. Its STARTED
 * event comes when it is done; until then it is not a running domain.
 */
static bool starting(virDomainPtr dom)
{
        int state = 0, reason = 0;
        if (virDomainGetState(dom, &state, &reason, 0) < 0)
                return false;
        return state == VIR_DOMAIN_SHUTOFF ||
               (state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_STARTING_UP);
}

static void list_domains(LvConn *c)
{
        virDomainPtr *doms = NULL;
        int n = virConnectListAllDomains(c->vc, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
        if (n < 0) {
                emu_warn(NULL, "libvirt: cannot list the running domains: %s", last_error());
                return;
        }
        g_autoptr(GStrvBuilder) names = g_strv_builder_new();
        g_autoptr(GStrvBuilder) xmls = g_strv_builder_new();
        g_autoptr(GStrvBuilder) pending = g_strv_builder_new();
        for (int i = 0; i < n; i++) {
                if (starting(doms[i])) {
                        g_strv_builder_add(pending, virDomainGetName(doms[i]));
                        virDomainFree(doms[i]);
                        continue;
                }
                char *xml = virDomainGetXMLDesc(doms[i], 0);
                if (xml) {
                        g_strv_builder_add(names, virDomainGetName(doms[i]));
                        g_strv_builder_add(xmls, xml);
                        free(xml);
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        Report *r = g_new0(Report, 1);
        r->type = REPORT_DOMAINS;
        r->names = g_strv_builder_end(names);
        r->xmls = g_strv_builder_end(xmls);
        r->starting = g_strv_builder_end(pending);
        post(c, r);
}

static bool alive(LvConn *c)
{
        return c->vc && virConnectIsAlive(c->vc) == 1;
}

/* (Re)connect unless connected; after a connect, the running domains are listed. */
static void job_open(LvConn *c)
{
        if (alive(c))
                return;
        drop_connection(c);
        c->vc = virConnectOpen(c->uri);
        if (!c->vc) {
                post_simple(c, REPORT_DISCONNECTED, NULL, last_error());
                return;
        }
        g_atomic_pointer_set(&c->current, c->vc);
        virConnectRegisterCloseCallback(c->vc, on_close, c, no_op);
        virConnectSetKeepAlive(c->vc, 5, 3);
        c->cb_lifecycle = virConnectDomainEventRegisterAny(
                c->vc, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle),
                c, no_op);
        c->cb_removed = virConnectDomainEventRegisterAny(
                c->vc, NULL, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                VIR_DOMAIN_EVENT_CALLBACK(on_device_removed), c, no_op);
        c->cb_metadata = virConnectDomainEventRegisterAny(
                c->vc, NULL, VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
                VIR_DOMAIN_EVENT_CALLBACK(on_metadata), c, no_op);
        if (c->cb_lifecycle < 0 || c->cb_removed < 0 || c->cb_metadata < 0) {
                g_autofree char *why = g_strdup_printf("cannot register for domain events: %s",
                                                       last_error());
                drop_connection(c);
                post_simple(c, REPORT_DISCONNECTED, NULL, why);
                return;
        }
        post_simple(c, REPORT_CONNECTED, NULL, NULL);
        list_domains(c);
}

static void job_xml(LvConn *c, Job *job)
{
        job_open(c);
        virDomainPtr dom = c->vc ? virDomainLookupByName(c->vc, job->domain) : NULL;
        /* A metadata change while it starts: its STARTED event brings the XML. */
        char *xml = dom && (job->started || !starting(dom)) ? virDomainGetXMLDesc(dom, 0)
                                                            : NULL;
        if (xml) {
                Report *r = g_new0(Report, 1);
                r->type = REPORT_XML;
                r->name = g_strdup(job->domain);
                r->text = g_strdup(xml);
                r->started = job->started;
                post(c, r);
                free(xml);
        } else {
                emu_debug(NULL, "libvirt: no XML for domain %s: %s", job->domain, last_error());
        }
        if (dom)
                virDomainFree(dom);
}

static void job_device(LvConn *c, Job *job)
{
        GError *error = NULL;
        /* A libvirtd that restarted since: connect again now rather than fail the call. */
        job_open(c);
        virDomainPtr dom = c->vc ? virDomainLookupByName(c->vc, job->domain) : NULL;
        int r = -1;
        if (dom && job->type == JOB_ATTACH)
                r = virDomainAttachDeviceFlags(dom, job->arg, VIR_DOMAIN_AFFECT_LIVE);
        else if (dom)
                r = virDomainDetachDeviceAlias(dom, job->arg, VIR_DOMAIN_AFFECT_LIVE);
        if (!c->vc)
                error = g_error_new(EMU_ERROR, EMU_ERROR_QMP_UNAVAILABLE,
                                    "not connected to libvirt (%s)", c->uri);
        else if (r < 0 && job->type == JOB_DETACH &&
                 virGetLastErrorCode() == VIR_ERR_DEVICE_MISSING)
                error = g_error_new(EMU_QMP_ERROR, EMU_QMP_ERROR_DEVICE_NOT_FOUND,
                                    "libvirt: %s", last_error());
        else if (r < 0)
                error = g_error_new(EMU_ERROR, EMU_ERROR_HOTPLUG_FAILED, "libvirt: %s",
                                    last_error());
        if (dom)
                virDomainFree(dom);
        Report *rep = g_new0(Report, 1);
        rep->type = REPORT_DONE;
        rep->done = job->done;
        rep->userdata = job->userdata;
        rep->error = error;
        post(c, rep);
}

static void run_job(gpointer data, gpointer userdata)
{
        Job *job = data;
        LvConn *c = userdata;
        switch (job->type) {
        case JOB_OPEN: job_open(c); break;
        case JOB_XML: job_xml(c, job); break;
        case JOB_ATTACH:
        case JOB_DETACH: job_device(c, job); break;
        }
        job_free(job);
}

/* ---- main loop ---------------------------------------------------------- */

static gboolean on_retry(gpointer p)
{
        LvConn *c = p;
        c->retry = 0;
        Job *job = g_new0(Job, 1);
        job->type = JOB_OPEN;
        push(c, job);
        return G_SOURCE_REMOVE;
}

static void schedule_open(LvConn *c, guint ms)
{
        if (!c->retry)
                c->retry = g_timeout_add(ms, on_retry, c);
}

static void silence(void *userdata, virErrorPtr error)
{
        /* Errors are read with virGetLastErrorMessage() where they matter. */
}

static gpointer init_once(gpointer unused)
{
        virSetErrorFunc(NULL, silence);
        /* libvirt 9.0's default implementation attaches to GLib's default context. */
        return GINT_TO_POINTER(virEventRegisterDefaultImpl() == 0);
}

LvConn *lv_conn_new(const char *uri, const LvConnOps *ops, void *userdata)
{
        static GOnce once = G_ONCE_INIT;
        if (!GPOINTER_TO_INT(g_once(&once, init_once, NULL))) {
                emu_warn(NULL, "libvirt: cannot set up its event loop: %s", last_error());
                return NULL;
        }
        LvConn *c = g_atomic_rc_box_new0(LvConn);
        c->uri = g_strdup(uri);
        c->ops = ops;
        c->userdata = userdata;
        c->main = g_main_context_ref_thread_default();
        c->cb_lifecycle = c->cb_removed = c->cb_metadata = -1;
        c->worker = g_thread_pool_new(run_job, c, 1, TRUE, NULL);
        on_retry(c);
        return c;
}

void lv_conn_free(LvConn *c)
{
        if (!c)
                return;
        c->closed = true;
        if (c->retry)
                g_source_remove(c->retry);
        /* The queued jobs run (their reports are dropped): none is left unfreed. */
        g_thread_pool_free(c->worker, FALSE, TRUE);
        drop_connection(c);
        lv_unref(c);
}

const char *lv_conn_uri(const LvConn *c)
{
        return c->uri;
}

static void push_device_job(LvConn *c, JobType type, const char *domain, const char *arg,
                            LvDoneFunc done, void *userdata)
{
        Job *job = g_new0(Job, 1);
        job->type = type;
        job->domain = g_strdup(domain);
        job->arg = g_strdup(arg);
        job->done = done;
        job->userdata = userdata;
        push(c, job);
}

void lv_conn_attach(LvConn *c, const char *domain, const char *xml, LvDoneFunc done,
                    void *userdata)
{
        push_device_job(c, JOB_ATTACH, domain, xml, done, userdata);
}

void lv_conn_detach(LvConn *c, const char *domain, const char *alias, LvDoneFunc done,
                    void *userdata)
{
        push_device_job(c, JOB_DETACH, domain, alias, done, userdata);
}
