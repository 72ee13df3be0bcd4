#!/usr/bin/env python3
"""The proxy on three monitors of one QEMU: clients are spread over them (each monitor's
own log shows which commands it ran), every client gets every event exactly once, and a
client's getfd name lives on the monitor it is pinned to."""

import os

import proxytest as t


def test(d):
    qemu = t.Qemu(d, logged=3)
    (primary, p_out), *extras = qemu.logged
    proxyd = t.Proxyd(d, primary, *[a for sock, _ in extras for a in ("--extra-qmp", sock)])
    try:
        # A monitor is ready once QEMU has answered the proxy's qmp_capabilities on it.
        for _, out in qemu.logged:
            t.wait_for(lambda: out.exists() and b'"return": {}' in out.read_bytes(),
                       f"the proxy's negotiation on {out.name}", alive=proxyd.alive)

        clients = [t.Raw(proxyd.path).negotiate() for _ in range(3)]
        for i, c in enumerate(clients):
            r = c.call("qom-list", {"path": f"/no-such/client-{i}"}, id=i)
            assert r["id"] == i and f"client-{i}" in r["error"]["desc"], r
        # QEMU appends to a chardev's log after writing to its socket: the reply can come first.
        t.wait_for(lambda: all(any(f"client-{i}" in out.read_text() for _, out in qemu.logged)
                               for i in range(3)), "every command in some monitor's log",
                   alive=proxyd.alive)
        owners = []
        for _, out in qemu.logged:
            log = out.read_text()
            seen = [i for i in range(3) if f"client-{i}" in log]
            assert len(seen) == 1, (out.name, seen, log[-2000:])
            owners += seen
        assert sorted(owners) == [0, 1, 2], owners
        print("3 clients ran on 3 different monitors:", owners)

        # Events come once per client, not once per monitor.
        clients[0].ok("cont", id="go")
        clients[0].ok("stop", id="halt")
        for i, c in enumerate(clients):
            assert c.wait_event("RESUME") and c.wait_event("STOP")
            c.ok("query-status", id="after")
            assert not c.events, (i, c.events)

        # getfd then closefd of the same name: both reach the client's own monitor.
        for c in clients:
            r_fd, w_fd = os.pipe()
            try:
                assert c.call("getfd", {"fdname": "mine"}, fds=[r_fd]) == {"return": {},
                                                                           "id": "c"}
            finally:
                os.close(r_fd)
                os.close(w_fd)
            assert c.call("closefd", {"fdname": "mine"}) == {"return": {}, "id": "c"}
        print("events once per client; getfd names kept per client")
    finally:
        proxyd.stop()
        qemu.stop()


t.main(test)
