#!/usr/bin/env python3
"""8 clients at once through the proxy, all using the same ids with commands in flight
together: each gets exactly its own replies, and every client gets every event."""

import proxytest as t

CLIENTS = 8
PER_CLIENT = 30   # under the default cap of 32 in flight per client


def request(client, k):
    """Even k: a plain query; odd k: an error whose text names the client and request."""
    if k % 2 == 0:
        return {"execute": "query-status", "id": f"same-{k}"}
    return {"execute": "qom-list", "arguments": {"path": f"/no-such/c{client}-r{k}"},
            "id": f"same-{k}"}


def test(d):
    qemu = t.Qemu(d)
    proxyd = t.Proxyd(d, qemu.qmp)
    try:
        clients = [t.Raw(proxyd.path).negotiate(oob=(i % 2 == 0)) for i in range(CLIENTS)]
        # Everything is sent before anything is read, so commands from all clients with
        # the same ids are in flight together.
        for k in range(PER_CLIENT):
            for i, c in enumerate(clients):
                c.send(request(i, k))
        for i, c in enumerate(clients):
            seen = []
            while len(seen) < PER_CLIENT:
                m = c.reply()
                seen.append(m["id"])
                k = int(m["id"].split("-")[1])
                if k % 2 == 0:
                    assert m["return"]["status"] == "prelaunch", m
                else:
                    assert f"c{i}-r{k}" in m["error"]["desc"], (i, m)
            assert seen == [f"same-{k}" for k in range(PER_CLIENT)], seen

        # One client drives the VM; all of them see the events, in order.
        clients[0].ok("cont", id="go")
        clients[0].ok("stop", id="halt")
        for i, c in enumerate(clients):
            assert c.wait_event("RESUME")["event"] == "RESUME"
            assert c.wait_event("STOP")["event"] == "STOP"
            c.ok("query-status", id="after")   # nobody else's reply is left over
            assert not c.events, (i, c.events)
        # Replies carry back exactly the id each client sent.
        assert clients[3].call("query-status", id=None)["id"] is None
        r = clients[3].call("query-name", id=[1, {"x": "y"}])
        assert r == {"return": {}, "id": [1, {"x": "y"}]}, r
        print(f"{CLIENTS} clients x {PER_CLIENT} commands with shared ids: all matched")
    finally:
        proxyd.stop()
        qemu.stop()


t.main(test)
