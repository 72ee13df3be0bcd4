/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>

/*
 * emud's connection to libvirtd. Every libvirt call runs on a worker
 * thread; libvirt's events come on the main loop (GLib's default context,
 * which libvirt's event implementation uses). All of LvConnOps is called
 * on the main loop. A lost connection is opened again every second, and at
 * once by a call that needs it. The connection is opened
 * again, every few seconds, whenever it is lost.
 */
typedef struct LvConn LvConn;

typedef struct {
        /* Connected (again); then domains() lists the running domains. */
        void (*connected)(void *userdata);
        /* The connection is gone or could not be made; it is retried every second. */
        void (*disconnected)(void *userdata, const char *why);
        /*
         * Every running domain with its XML, after each connect (names and xmls
         * pair up), and the domains libvirt is still starting (their STARTED
         * event follows).
         */
        void (*domains)(void *userdata, char **names, char **xmls, char **starting);
        /* A domain started, or its metadata changed: its live XML. */
        void (*domain_xml)(void *userdata, const char *name, const char *xml, bool started);
        void (*domain_stopped)(void *userdata, const char *name, const char *why);
        void (*device_removed)(void *userdata, const char *name, const char *alias);
} LvConnOps;

LvConn *lv_conn_new(const char *uri, const LvConnOps *ops, void *userdata);
/* Waits for the libvirt call in flight, if any; no callback runs afterwards. */
void lv_conn_free(LvConn *c);
const char *lv_conn_uri(const LvConn *c);

/* Answered on the main loop; error NULL on success. */
typedef void (*LvDoneFunc)(void *userdata, const GError *error);
/* virDomainAttachDeviceFlags(…, LIVE). */
void lv_conn_attach(LvConn *c, const char *domain, const char *xml, LvDoneFunc done,
                    void *userdata);
/*
 * virDomainDetachDeviceAlias(…, LIVE): done when libvirt has asked the
 * guest; the device is gone only with device_removed(). A device libvirt
 * does not know fails with EMU_QMP_ERROR_DEVICE_NOT_FOUND.
 */
void lv_conn_detach(LvConn *c, const char *domain, const char *alias, LvDoneFunc done,
                    void *userdata);
