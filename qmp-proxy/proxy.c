/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxy: the QMP proxy server, many clients onto QEMU's monitor(s).
 *
 * Each client gets QEMU's greeting unchanged and its own negotiation. Its
 * commands are routed by proxy-route.c and forwarded with
 * emu_qmp_client_forward(), which puts the upstream client's own id on them,
 * so two clients using the same id never see each other's replies; the
 * reply gets the client's id back here. QEMU's events are encoded once and
 * queued to every negotiated client in the order QEMU sent them.
 *
 * Upstream links: the primary client (the one emud itself uses) and any
 * number of further monitors of the same QEMU. QEMU runs one command at a
 * time per monitor, so more monitors let more clients' commands proceed at
 * once. Each client is pinned, when it connects, to the ready link with the
 * fewest clients, and stays there: its commands keep their order, its getfd
 * names live on that monitor as they would for a direct client, and it
 * receives the events of that monitor, in QEMU's order relative to its
 * replies. The greeting is the primary's.
 *
 * Lifetimes: a Call (a forwarded command) and a Request (an extension
 * command) outlive their client if it leaves mid-command; they then finish
 * quietly (a getfd that succeeds for a departed client is closed again).
 * When an upstream client closes or is freed, the proxy answers the Calls
 * outstanding on it with an error and forgets the pointer; its clients move
 * to another link (their getfd names went with the monitor, as QEMU drops a
 * connection's names), or, when none is left, new commands are refused with
 * a GenericError naming the reason.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "emu-error.h"
#include "emu-socket.h"
#include "emu-util.h"
#include "proxy-route.h"
#include "proxy-session.h"
#include "proxy.h"

typedef struct Client Client;

typedef struct {
        EmuQmpProxyCommandFunc fn;
        void *userdata;
} Command;

typedef struct {
        EmuQmpProxy *p;
        EmuQmpClient *up; /* NULL once it closed or was freed */
        guint observer;
        bool ready;
        bool oob;
        guint n_clients; /* clients pinned here */
} Link;

struct EmuQmpProxy {
        GPtrArray *links;    /* Link; [0] is the primary */
        char *upstream_gone; /* why the last link went away */
        json_t *greeting;    /* the primary's */
        bool oob_offered;
        EmuQmpProxyConfig cfg;
        char *path;
        int listen_fd;
        guint listen_watch;
        GHashTable *clients;  /* Client set */
        GHashTable *commands; /* name -> Command */
        GHashTable *calls;    /* Call set */
        GHashTable *requests; /* EmuQmpProxyRequest set */
        guint next_client;
};

struct Client {
        EmuQmpProxy *p;
        ProxySession *s;
        Link *link; /* where its commands go; NULL when no link is left */
        char *fd_prefix;
        bool greeted;
        bool negotiated;
        bool oob;
        guint in_flight;
        GHashTable *fdnames; /* the client's getfd names alive upstream */
};

typedef struct {
        EmuQmpProxy *p;
        Client *client; /* NULL once the client left */
        Link *link;     /* the upstream it was sent on */
        json_t *id;
        guint64 handle;
        bool in_forward; /* inside emu_qmp_client_forward(): no handle yet */
        bool finished;   /* answered while in_forward */
        bool rewrote;
        bool list_extensions;
        char *getfd_name;
        char *getfd_upstream; /* the same name, as QEMU knows it */
        char *closefd_name;
} Call;

struct EmuQmpProxyRequest {
        EmuQmpProxy *p; /* NULL once the proxy was freed */
        Client *client; /* NULL once the client left */
        json_t *id;
};

void emu_qmp_proxy_config_init(EmuQmpProxyConfig *cfg)
{
        *cfg = (EmuQmpProxyConfig){
                .mode = 0600,
                .owner = (uid_t)-1,
                .group = (gid_t)-1,
                .max_message = 1024 * 1024,
                .max_in_flight = 32,
                .max_output = 8 * 1024 * 1024,
                .max_clients = 64,
                .max_fdnames = 64,
        };
}

static void call_free(Call *call)
{
        json_decref(call->id);
        g_free(call->getfd_name);
        g_free(call->getfd_upstream);
        g_free(call->closefd_name);
        g_free(call);
}

static void send_error(Client *c, json_t *id, const char *cls, const char *fmt, ...)
        G_GNUC_PRINTF(4, 5);
static void send_error(Client *c, json_t *id, const char *cls, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *desc = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_autoptr(json_t) reply = proxy_error_reply(id, cls, desc);
        proxy_session_send(c->s, reply);
}

/* Close a getfd name upstream, for a client that is gone or never learnt of it. */
static void close_upstream_fd(Link *link, const char *prefix, const char *name)
{
        if (!link || !link->up)
                return;
        emu_qmp_client_execute(link->up, "closefd",
                               json_pack("{s:s+}", "fdname", prefix, name), 0, NULL, NULL);
}

static void add_extensions(EmuQmpProxy *p, json_t *list)
{
        if (!json_is_array(list))
                return;
        GHashTableIter it;
        const char *name;
        g_hash_table_iter_init(&it, p->commands);
        while (g_hash_table_iter_next(&it, (gpointer *)&name, NULL))
                json_array_append_new(list, json_pack("{s:s}", "name", name));
}

static void on_upstream_reply(EmuQmpClient *up, json_t *reply, const GError *error,
                              void *userdata)
{
        Call *call = userdata;
        EmuQmpProxy *p = call->p;
        Client *c = call->client;
        g_hash_table_remove(p->calls, call);
        bool ok = reply && json_object_get(reply, "return");

        if (ok && call->getfd_name) {
                if (c)
                        g_hash_table_add(c->fdnames, g_strdup(call->getfd_name));
                else
                        close_upstream_fd(call->link, "", call->getfd_upstream);
        }
        if (ok && call->closefd_name && c)
                g_hash_table_remove(c->fdnames, call->closefd_name);

        if (c) {
                c->in_flight--;
                if (reply) {
                        g_autoptr(json_t) out = json_copy(reply);
                        proxy_reply_restore(out, call->id, call->rewrote ? c->fd_prefix : NULL);
                        if (ok && call->list_extensions)
                                add_extensions(p, json_object_get(out, "return"));
                        proxy_session_send(c->s, out);
                } else {
                        send_error(c, call->id, "GenericError", "%s", error->message);
                }
        }
        if (call->in_forward)
                call->finished = true;
        else
                call_free(call);
}

static void forward(Client *c, ProxyRoute *r)
{
        EmuQmpProxy *p = c->p;
        if (r->getfd_name && !g_hash_table_contains(c->fdnames, r->getfd_name) &&
            g_hash_table_size(c->fdnames) >= p->cfg.max_fdnames) {
                send_error(c, r->id, "GenericError",
                           "too many named fds on this connection (limit %u)",
                           p->cfg.max_fdnames);
                return;
        }
        Call *call = g_new0(Call, 1);
        call->p = p;
        call->client = c;
        call->link = c->link;
        call->id = g_steal_pointer(&r->id);
        call->rewrote = r->rewrote;
        call->list_extensions = r->list_extensions;
        call->getfd_name = g_steal_pointer(&r->getfd_name);
        if (call->getfd_name)
                call->getfd_upstream = g_strconcat(c->fd_prefix, call->getfd_name, NULL);
        call->closefd_name = g_steal_pointer(&r->closefd_name);
        int fd = r->wants_fd ? proxy_session_take_fd(c->s) : -1;
        c->in_flight++;
        g_hash_table_add(p->calls, call);
        call->in_forward = true;
        guint64 handle = emu_qmp_client_forward(c->link->up, g_steal_pointer(&r->upstream), &fd,
                                                fd >= 0 ? 1 : 0, on_upstream_reply, call);
        call->in_forward = false;
        if (call->finished)
                call_free(call);
        else
                call->handle = handle;
}

static void run_extension(Client *c, ProxyRoute *r)
{
        EmuQmpProxy *p = c->p;
        Command *cmd = g_hash_table_lookup(p->commands, r->command);
        EmuQmpProxyRequest *req = g_new0(EmuQmpProxyRequest, 1);
        req->p = p;
        req->client = c;
        req->id = g_steal_pointer(&r->id);
        g_hash_table_add(p->requests, req);
        c->in_flight++;
        cmd->fn(p, r->arguments, req, cmd->userdata);
}

static void on_input(ProxySession *s, int r, json_t *value, const char *why, void *userdata)
{
        Client *c = userdata;
        EmuQmpProxy *p = c->p;
        if (r < 0) {
                g_autoptr(json_t) reply = proxy_bad_input_reply(r, why);
                proxy_session_send(s, reply);
                return;
        }
        ProxyRouteCtx ctx = {
                .negotiated = c->negotiated,
                .oob = c->oob,
                .oob_offered = p->oob_offered && c->link && c->link->oob,
                .fd_prefix = c->fd_prefix,
                .extensions = p->commands,
        };
        ProxyRoute route;
        proxy_route(&ctx, value, &route);
        switch (route.action) {
        case PROXY_ROUTE_REPLY:
                if (route.negotiated) {
                        c->negotiated = true;
                        c->oob = route.enable_oob;
                }
                proxy_session_send(s, route.reply);
                break;
        case PROXY_ROUTE_EXTENSION:
        case PROXY_ROUTE_UPSTREAM:
                if (c->in_flight >= p->cfg.max_in_flight) {
                        send_error(c, route.id, "GenericError",
                                   "too many commands in flight on this connection (limit %u)",
                                   p->cfg.max_in_flight);
                } else if (route.action == PROXY_ROUTE_EXTENSION) {
                        run_extension(c, &route);
                } else if (!c->link) {
                        send_error(c, route.id, "GenericError",
                                   "QEMU's QMP monitor is not available: %s",
                                   p->upstream_gone ? p->upstream_gone : "closed");
                } else {
                        forward(c, &route);
                }
                break;
        }
        proxy_route_clear(&route);
}

/* Move c to link (NULL: none), keeping the links' client counts. */
static void pin(Client *c, Link *link)
{
        if (c->link)
                c->link->n_clients--;
        c->link = link;
        if (link)
                link->n_clients++;
}

static void client_free(Client *c)
{
        EmuQmpProxy *p = c->p;
        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, p->calls);
        while (g_hash_table_iter_next(&it, &key, NULL))
                if (((Call *)key)->client == c)
                        ((Call *)key)->client = NULL;
        g_hash_table_iter_init(&it, p->requests);
        while (g_hash_table_iter_next(&it, &key, NULL))
                if (((EmuQmpProxyRequest *)key)->client == c)
                        ((EmuQmpProxyRequest *)key)->client = NULL;
        /* QEMU drops a connection's getfd names when it closes; do the same. */
        g_hash_table_iter_init(&it, c->fdnames);
        while (g_hash_table_iter_next(&it, &key, NULL))
                close_upstream_fd(c->link, c->fd_prefix, key);
        pin(c, NULL);
        proxy_session_free(c->s);
        g_hash_table_unref(c->fdnames);
        g_free(c->fd_prefix);
        g_free(c);
}

static void on_session_closed(ProxySession *s, const char *reason, void *userdata)
{
        Client *c = userdata;
        g_debug("QMP proxy %s: client %s left: %s", c->p->path, c->fd_prefix, reason);
        g_hash_table_remove(c->p->clients, c); /* frees it */
}

static const ProxySessionOps session_ops = {
        .input = on_input,
        .closed = on_session_closed,
};

/*
 * The ready link with the fewest clients; the primary while none is ready
 * yet (the client waits for its greeting); NULL when every link is gone.
 */
static Link *pick_link(EmuQmpProxy *p)
{
        Link *best = NULL;
        for (guint i = 0; i < p->links->len; i++) {
                Link *l = g_ptr_array_index(p->links, i);
                if (l->up && l->ready && (!best || l->n_clients < best->n_clients))
                        best = l;
        }
        Link *primary = g_ptr_array_index(p->links, 0);
        return best ? best : primary->up ? primary : NULL;
}

static void greet(Client *c)
{
        if (c->greeted || !c->p->greeting)
                return;
        c->greeted = true;
        proxy_session_send(c->s, c->p->greeting);
}

static gboolean on_accept(int fd, GIOCondition cond, gpointer userdata)
{
        EmuQmpProxy *p = userdata;
        emu_autofd cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return G_SOURCE_CONTINUE; /* EAGAIN, or out of fds: try again later */
        Link *link = pick_link(p);
        if (g_hash_table_size(p->clients) >= p->cfg.max_clients || (!link && !p->greeting)) {
                g_autofree char *line = g_strdup_printf(
                        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"%s\"}}\r\n",
                        link ? "too many QMP clients" : "QEMU's QMP monitor is gone");
                (void)!send(cfd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
                return G_SOURCE_CONTINUE;
        }
        Client *c = g_new0(Client, 1);
        c->p = p;
        c->fd_prefix = g_strdup_printf(PROXY_FDNAME_PREFIX "%u.", ++p->next_client);
        c->fdnames = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        c->s = proxy_session_new(emu_steal_fd(&cfd), p->cfg.max_message, p->cfg.max_output,
                                 &session_ops, c);
        pin(c, link);
        g_hash_table_add(p->clients, c);
        greet(c);
        return G_SOURCE_CONTINUE;
}

/* To every negotiated client, or only to those pinned to link when it is not NULL. */
static void fan_out(EmuQmpProxy *p, Link *link, json_t *msg)
{
        if (link && link->n_clients == 0)
                return; /* every monitor sends every event; nobody listens to this one */
        size_t len = 0;
        g_autofree char *text = emu_qmp_encode(msg, &len);
        if (!text)
                return;
        GHashTableIter it;
        Client *c;
        g_hash_table_iter_init(&it, p->clients);
        while (g_hash_table_iter_next(&it, (gpointer *)&c, NULL))
                if (c->negotiated && (!link || c->link == link))
                        proxy_session_send_text(c->s, text, len);
}

static void on_upstream_ready(EmuQmpClient *up, json_t *greeting, void *userdata)
{
        Link *link = userdata;
        EmuQmpProxy *p = link->p;
        link->ready = true;
        link->oob = emu_qmp_client_has_oob(up);
        if (link != g_ptr_array_index(p->links, 0))
                return;
        json_decref(p->greeting);
        p->greeting = json_incref(greeting);
        p->oob_offered = link->oob;
        GHashTableIter it;
        Client *c;
        g_hash_table_iter_init(&it, p->clients);
        while (g_hash_table_iter_next(&it, (gpointer *)&c, NULL))
                greet(c);
}

static void on_upstream_event(EmuQmpClient *up, json_t *msg, void *userdata)
{
        Link *link = userdata;
        fan_out(link->p, link, msg);
}

static void on_upstream_closed(EmuQmpClient *up, const GError *reason, void *userdata)
{
        Link *link = userdata;
        EmuQmpProxy *p = link->p;
        g_free(p->upstream_gone);
        p->upstream_gone = g_strdup(reason ? reason->message : "closed");
        /* Answer now: a client freed by its owner calls nobody back. */
        guint n = 0;
        g_autofree gpointer *calls = g_hash_table_get_keys_as_array(p->calls, &n);
        for (guint i = 0; i < n; i++) {
                Call *call = calls[i];
                if (call->link != link || call->in_forward)
                        continue; /* in_forward: its callback comes from inside forward() */
                emu_qmp_client_cancel(up, call->handle);
                g_hash_table_remove(p->calls, call);
                if (call->client) {
                        call->client->in_flight--;
                        send_error(call->client, call->id, "GenericError",
                                   "QEMU's QMP monitor went away: %s", p->upstream_gone);
                }
                call_free(call);
        }
        link->up = NULL;
        link->observer = 0;
        link->ready = false;

        /* Its clients move on; their getfd names were the monitor's and are gone. */
        GHashTableIter it;
        Client *c;
        g_hash_table_iter_init(&it, p->clients);
        while (g_hash_table_iter_next(&it, (gpointer *)&c, NULL)) {
                if (c->link != link)
                        continue;
                g_hash_table_remove_all(c->fdnames);
                pin(c, pick_link(p));
        }
}

static const EmuQmpObserverOps observer_ops = {
        .ready = on_upstream_ready,
        .event = on_upstream_event,
        .closed = on_upstream_closed,
};

static void add_link(EmuQmpProxy *p, EmuQmpClient *up)
{
        Link *link = g_new0(Link, 1);
        link->p = p;
        g_ptr_array_add(p->links, link);
        if (emu_qmp_client_is_closed(up)) {
                g_free(p->upstream_gone);
                p->upstream_gone = g_strdup("closed");
                return;
        }
        link->up = up;
        link->observer = emu_qmp_client_add_observer(up, &observer_ops, link);
        if (emu_qmp_client_is_ready(up))
                on_upstream_ready(up, emu_qmp_client_get_greeting(up), link);
}

/* Bind under a temporary name and rename into place: nobody sees it with the wrong mode. */
static int listen_at(const char *path, const EmuQmpProxyConfig *cfg, GError **error)
{
        struct sockaddr_un sa;
        g_autofree char *tmp = g_strdup_printf("%s.%d.tmp", path, (int)getpid());
        if (emu_unix_addr(&sa, tmp) < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "QMP proxy socket path %s is too long", path);
                return -1;
        }
        emu_autofd fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_FAILED, "socket: %s", g_strerror(errno));
                return -1;
        }
        (void)g_unlink(tmp);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            chmod(tmp, cfg->mode) < 0 ||
            ((cfg->owner != (uid_t)-1 || cfg->group != (gid_t)-1) &&
             chown(tmp, cfg->owner, cfg->group) < 0) ||
            rename(tmp, path) < 0 || listen(fd, 64) < 0) {
                int saved = errno;
                (void)g_unlink(tmp);
                g_set_error(error, EMU_ERROR, EMU_ERROR_BAD_PATH,
                            "cannot create QMP proxy socket %s: %s", path, g_strerror(saved));
                return -1;
        }
        return emu_steal_fd(&fd);
}

EmuQmpProxy *emu_qmp_proxy_new(EmuQmpClient *upstream, const char *socket_path,
                               const EmuQmpProxyConfig *cfg, GError **error)
{
        EmuQmpProxyConfig defaults;
        emu_qmp_proxy_config_init(&defaults);
        int fd = listen_at(socket_path, cfg ? cfg : &defaults, error);
        if (fd < 0)
                return NULL;
        EmuQmpProxy *p = g_new0(EmuQmpProxy, 1);
        p->cfg = cfg ? *cfg : defaults;
        p->path = g_strdup(socket_path);
        p->listen_fd = fd;
        p->clients = g_hash_table_new_full(NULL, NULL, (GDestroyNotify)client_free, NULL);
        p->commands = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        p->calls = g_hash_table_new(NULL, NULL);
        p->requests = g_hash_table_new(NULL, NULL);
        p->links = g_ptr_array_new_with_free_func(g_free);
        add_link(p, upstream);
        p->listen_watch = emu_fd_watch(fd, G_IO_IN, on_accept, p);
        return p;
}

void emu_qmp_proxy_free(EmuQmpProxy *p)
{
        if (!p)
                return;
        if (p->listen_watch)
                g_source_remove(p->listen_watch);
        emu_close(p->listen_fd);
        (void)g_unlink(p->path);
        g_hash_table_unref(p->clients); /* clients first: they orphan calls and requests */
        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, p->calls);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
                Call *call = key;
                if (call->link->up)
                        emu_qmp_client_cancel(call->link->up, call->handle);
                call_free(call);
        }
        g_hash_table_unref(p->calls);
        g_hash_table_iter_init(&it, p->requests);
        while (g_hash_table_iter_next(&it, &key, NULL))
                ((EmuQmpProxyRequest *)key)->p = NULL;
        g_hash_table_unref(p->requests);
        for (guint i = 0; i < p->links->len; i++) {
                Link *link = g_ptr_array_index(p->links, i);
                if (link->up)
                        emu_qmp_client_remove_observer(link->up, link->observer);
        }
        g_ptr_array_unref(p->links);
        g_hash_table_unref(p->commands);
        json_decref(p->greeting);
        g_free(p->upstream_gone);
        g_free(p->path);
        g_free(p);
}

bool emu_qmp_proxy_add_command(EmuQmpProxy *p, const char *name, EmuQmpProxyCommandFunc fn,
                               void *userdata, GError **error)
{
        if (!g_str_has_prefix(name, "__") || !strchr(name + 2, '_') ||
            g_hash_table_contains(p->commands, name)) {
                g_set_error(error, EMU_ERROR, EMU_ERROR_INVALID_ID,
                            "%s is not a new downstream QMP command name (__org.example_name)",
                            name);
                return false;
        }
        Command *cmd = g_new0(Command, 1);
        cmd->fn = fn;
        cmd->userdata = userdata;
        g_hash_table_insert(p->commands, g_strdup(name), cmd);
        return true;
}

static void request_finish(EmuQmpProxyRequest *req, json_t *reply)
{
        if (req->p && req->client) {
                req->client->in_flight--;
                proxy_session_send(req->client->s, reply);
        }
        if (req->p)
                g_hash_table_remove(req->p->requests, req);
        json_decref(req->id);
        g_free(req);
}

void emu_qmp_proxy_request_return(EmuQmpProxyRequest *req, json_t *ret)
{
        g_autoptr(json_t) reply = json_object();
        json_object_set_new(reply, "return", ret ? ret : json_object());
        if (req->id)
                json_object_set(reply, "id", req->id);
        request_finish(req, reply);
}

void emu_qmp_proxy_request_error(EmuQmpProxyRequest *req, EmuQmpErrorClass cls,
                                 const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *desc = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_autoptr(json_t) reply = proxy_error_reply(req->id, emu_qmp_error_class_name(cls),
                                                    desc);
        request_finish(req, reply);
}

void emu_qmp_proxy_emit_event(EmuQmpProxy *p, const char *name, json_t *data)
{
        gint64 now = g_get_real_time();
        g_autoptr(json_t) msg = json_pack("{s:{s:I, s:I}, s:s}", "timestamp", "seconds",
                                          (json_int_t)(now / G_USEC_PER_SEC), "microseconds",
                                          (json_int_t)(now % G_USEC_PER_SEC), "event", name);
        if (data)
                json_object_set_new(msg, "data", data);
        fan_out(p, NULL, msg);
}

guint emu_qmp_proxy_n_clients(const EmuQmpProxy *p)
{
        return g_hash_table_size(p->clients);
}

void emu_qmp_proxy_add_upstream(EmuQmpProxy *p, EmuQmpClient *upstream)
{
        add_link(p, upstream);
}
