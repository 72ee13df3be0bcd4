#!/usr/bin/env python3
"""Emulator routing: __org.emud_emulator-execute reaches a real qemu-storage-daemon's own
monitor, and its events reach proxy clients as __org.emud_EMULATOR_EVENT."""

import proxytest as t


def test(d):
    img = d / "disk.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    mon = d / "qsd-qmp.sock"
    qsd = t.Proc([t.QSD, "--blockdev", f"driver=file,node-name=file0,filename={img}",
                  "--export", "type=vhost-user-blk,id=exp0,node-name=file0,writable=on,"
                  f"addr.type=unix,addr.path={d / 'vhost.sock'}",
                  "--chardev", f"socket,id=m,path={mon},server=on,wait=off",
                  "--monitor", "chardev=m"], d / "qsd.log")
    qemu = t.Qemu(d)
    proxyd = None
    try:
        t.wait_for(mon.exists, "qsd's monitor", alive=qsd.alive)
        proxyd = t.Proxyd(d, qemu.qmp, "--qsd", str(mon))
        c = t.Raw(proxyd.path).negotiate()
        # "running" may have been announced before this client negotiated: ask instead.
        emus = t.wait_for(lambda: [e for e in c.ok("__org.emud_query-emulators")
                                   if e["state"] == "running"], "qsd0 running")
        assert [e["id"] for e in emus] == ["qsd0"], emus

        exports = c.ok("__org.emud_emulator-execute",
                       {"emulator": "qsd0", "execute": "query-block-exports"})
        assert [e["id"] for e in exports] == ["exp0"], exports
        assert exports[0]["type"] == "vhost-user-blk" and exports[0]["node-name"] == "file0"

        # Errors: the emulator's own, and the proxy's for a wrong emulator.
        r = c.call("__org.emud_emulator-execute", {"emulator": "qsd0", "execute": "nosuch"})
        assert r["error"]["class"] == "CommandNotFound", r
        r = c.call("__org.emud_emulator-execute", {"emulator": "nope", "execute": "x"})
        assert r["error"]["class"] == "DeviceNotFound", r
        r = c.call("__org.emud_emulator-execute", {"emulator": "qsd0"})
        assert r["error"]["class"] == "GenericError", r
        # Extension commands are in-band only, as QEMU says of such commands.
        r = t.Raw(proxyd.path).negotiate(oob=True).call(
            "__org.emud_query-emulators", id="o", **{"exec-oob": "x"})
        assert r["error"]["class"] == "GenericError", r

        # An event on qsd's monitor reaches the proxy client, wrapped.
        c.ok("__org.emud_emulator-execute", {"emulator": "qsd0", "execute": "block-export-del",
                                             "arguments": {"id": "exp0"}})
        ev = c.wait_event("__org.emud_EMULATOR_EVENT")
        assert ev["data"] == {"emulator": "qsd0", "event": "BLOCK_EXPORT_DELETED",
                              "data": {"id": "exp0"}}, ev
        assert set(ev["timestamp"]) == {"seconds", "microseconds"}

        # The emulator's life cycle: it goes away.
        qsd.stop()
        ev = c.wait_event("__org.emud_EMULATOR_STATE")
        assert ev["data"]["state"] == "gone" and "reason" in ev["data"], ev
        r = c.call("__org.emud_emulator-execute",
                   {"emulator": "qsd0", "execute": "query-block-exports"})
        assert "closed" in r["error"]["desc"], r
        c.ok("query-status")
        print("emulator-execute, wrapped events and state changes: ok")
    finally:
        if proxyd:
            proxyd.stop()
        qemu.stop()
        qsd.stop()


t.main(test, needs=(t.QEMU, t.QSD))
