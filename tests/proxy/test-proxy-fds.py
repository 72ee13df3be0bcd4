#!/usr/bin/env python3
"""fds through the proxy: getfd names are per client (as QEMU keeps them per monitor
connection) and a chardev and a netdev can use them; add-fd reaches QEMU's fd sets; a
client's named fds are closed in QEMU when it leaves."""

import os
import socket

import proxytest as t


def qemu_fds(qemu):
    return len(os.listdir(f"/proc/{qemu.proc.pid}/fd"))


def test(d):
    qemu = t.Qemu(d)
    proxyd = t.Proxyd(d, qemu.qmp)
    try:
        a = t.Raw(proxyd.path).negotiate()
        b = t.Raw(proxyd.path).negotiate()

        # getfd with no fd: QEMU's own answer.
        r = a.call("getfd", {"fdname": "sock"})
        assert r["error"]["desc"] == "No file descriptor supplied via SCM_RIGHTS", r

        # The same name from two clients names two different fds.
        sa, sa_peer = socket.socketpair()
        sb, sb_peer = socket.socketpair()
        a.ok("getfd", {"fdname": "sock"}, fds=[sa.fileno()])
        b.ok("getfd", {"fdname": "sock"}, fds=[sb.fileno()])
        sa.close()
        sb.close()

        # A chardev on a's fd, by the name a gave it.
        a.ok("chardev-add", {"id": "cfd", "backend": {"type": "socket", "data": {
            "addr": {"type": "fd", "data": {"str": "sock"}}, "server": False}}})
        labels = {c["label"]: c for c in a.ok("query-chardev")}
        assert "cfd" in labels, labels
        a.ok("chardev-remove", {"id": "cfd"})
        # Consumed by the chardev, so gone from a's names, as QEMU does it.
        r = a.call("closefd", {"fdname": "sock"})
        assert r["error"]["desc"] == "File descriptor named 'sock' not found", r

        # b's fd is still there under the same name: a netdev uses it.
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        b.ok("getfd", {"fdname": "net"}, fds=[udp.fileno()])
        udp.close()
        b.ok("netdev_add", {"type": "socket", "id": "n0", "fd": "net"})
        assert any(n.get("id") == "n0" for n in b.ok("query-netdev")) if "query-netdev" in {
            c["name"] for c in b.ok("query-commands")} else True
        b.ok("netdev_del", {"id": "n0"})
        b.ok("closefd", {"fdname": "sock"})

        # Names in the proxy's reserved space are refused.
        r = b.call("device_add", {"driver": "x-pci-proxy-dev", "id": "p", "fd": "emud-proxy.1.x"})
        assert "reserved" in r["error"]["desc"], r

        # add-fd then query-fdsets shows it.
        rfd, wfd = os.pipe()
        added = a.ok("add-fd", {"opaque": "proxied-pipe"}, fds=[rfd])
        os.close(rfd)
        os.close(wfd)
        sets = {s["fdset-id"]: s for s in a.ok("query-fdsets")}
        fds = sets[added["fdset-id"]]["fds"]
        assert any(f["fd"] == added["fd"] and f.get("opaque") == "proxied-pipe" for f in fds), fds
        a.ok("remove-fd", {"fdset-id": added["fdset-id"]})

        # A client's named fds are closed in QEMU when it disconnects.
        before = qemu_fds(qemu)
        c = t.Raw(proxyd.path).negotiate()
        r1, w1 = os.pipe()
        c.ok("getfd", {"fdname": "left-behind"}, fds=[r1])
        os.close(r1)
        os.close(w1)
        assert qemu_fds(qemu) == before + 1
        c.close()
        t.wait_for(lambda: qemu_fds(qemu) == before, "QEMU to close the departed client's fd")
        a.ok("query-status")
        print("getfd per client, chardev and netdev by name, add-fd, cleanup: ok")
    finally:
        proxyd.stop()
        qemu.stop()


t.main(test)
