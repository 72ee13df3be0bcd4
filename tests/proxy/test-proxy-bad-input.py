#!/usr/bin/env python3
"""Bad input through the proxy: garbage, a 10 MiB line, a client that never reads while
events flood, clients that leave mid-command, too many commands in flight, and QEMU going
away. Each gets an error or a disconnect of that client only; the others keep working and
the proxy stays up."""

import json
import os
import socket

import proxytest as t

MAX_OUTPUT = 65536


def alive_and_well(proxyd, c):
    proxyd.alive()
    assert c.ok("query-status", id="health")["status"] in ("prelaunch", "paused", "running")


def test(d):
    qemu = t.Qemu(d)
    proxyd = t.Proxyd(d, qemu.qmp, "--max-output", str(MAX_OUTPUT))
    try:
        good = t.Raw(proxyd.path).negotiate()

        # Garbage: errors (GenericError), then the session goes on. Like QEMU, the proxy
        # reads JSON values, not lines: an unclosed value takes in what follows until a
        # byte that cannot occur in UTF-8 (0xFF) abandons it, as QMP clients do to resync.
        g = t.Raw(proxyd.path)
        g.send(os.urandom(4096) + b"\n\x00\xff{{{\n" + b'{"execute": \n' + b"\xff")
        g.send({"execute": "qmp_capabilities", "id": "after"})
        n_errors = 0
        while True:
            m = g.reply()
            if m.get("id") == "after":
                break
            assert m["error"]["class"] == "GenericError", m
            n_errors += 1
        assert n_errors >= 2, n_errors
        alive_and_well(proxyd, g)

        # A 10 MiB line: one error, then the session goes on.
        big = t.Raw(proxyd.path).negotiate()
        big.send(b'{"execute": "query-status", "id": "' + b"x" * (10 << 20) + b'"}\n')
        r = big.reply()
        assert r["error"]["class"] == "GenericError" and "too large" in r["error"]["desc"], r
        alive_and_well(proxyd, big)

        # Too many in flight: one burst of 100 commands; each gets exactly one reply, some
        # of them the cap's error.
        burst = t.Raw(proxyd.path).negotiate()
        burst.send(b"".join(json.dumps({"execute": "query-status", "id": k}).encode() + b"\n"
                            for k in range(100)))
        ids, capped = [], 0
        while len(ids) < 100:
            m = burst.reply()
            ids.append(m["id"])
            capped += "too many commands in flight" in m.get("error", {}).get("desc", "")
        assert sorted(ids) == list(range(100)) and capped > 0, (ids, capped)

        # Leaving mid-command: a big reply, an extension command, a getfd.
        for cmd in ("query-qmp-schema", "__org.emud_test-slow"):
            q = t.Raw(proxyd.path).negotiate()
            q.send({"execute": cmd, "id": 1})
            q.close()
        q = t.Raw(proxyd.path).negotiate()
        r, w = os.pipe()
        q.send({"execute": "getfd", "arguments": {"fdname": "f"}, "id": 1}, fds=[r])
        os.close(r)
        os.close(w)
        q.close()
        alive_and_well(proxyd, good)

        # A client that never reads while events flood is dropped; the others are not.
        lazy = t.Raw(proxyd.path).negotiate()
        lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        dropped = False
        for _ in range(200):
            for k in range(15):   # stays under the in-flight cap
                good.send({"execute": "stop", "id": f"s{k}"})
                good.send({"execute": "cont", "id": f"c{k}"})
            for _ in range(30):
                good.reply()
            good.events.clear()
            try:
                lazy.sock.send(b"\n", socket.MSG_DONTWAIT)
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
            except BlockingIOError:
                pass
        assert dropped, "a client that never reads was not disconnected"
        alive_and_well(proxyd, good)

        # QEMU goes away: the proxy stays, clients stay connected, commands are refused.
        qemu.stop()
        r = good.call("query-status", id="gone")
        assert r["error"]["class"] == "GenericError", r
        assert "not available" in r["error"]["desc"] or "went away" in r["error"]["desc"], r
        late = t.Raw(proxyd.path)
        assert "QMP" in late.greeting, late.greeting
        late.negotiate()
        r = late.call("query-status")
        assert "not available" in r["error"]["desc"], r
        proxyd.alive()
        print("garbage, 10 MiB line, in-flight cap, mid-command exits, non-reader, "
              "QEMU gone: ok")
    finally:
        proxyd.stop()
        qemu.stop()


t.main(test)
