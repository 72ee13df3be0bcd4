/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The far end of a QMP connection in unit tests: a socket read line by line
 * while the test's GLib main loop keeps running. It plays a scripted QEMU
 * (test-qmp-client, test-proxy-links) or a proxy client. Real QEMU is used
 * wherever it can produce the case; these tests cover what it cannot.
 */
#include <stdbool.h>
#include <stddef.h>

#include <glib.h>
#include <jansson.h>

typedef struct {
        int fd;
        GString *buf;
        int fds[4];
        size_t n_fds;
} Server;

/* Next line the peer sent, running the main loop until it arrives. */
json_t *server_read(Server *s);
/* True if the peer sent nothing more (after letting the main loop run a little). */
bool server_quiet(Server *s);
void server_write(Server *s, const char *text);
/* Run the main loop until *flag is set (asserting that it is, eventually). */
void spin_until(bool *flag);
