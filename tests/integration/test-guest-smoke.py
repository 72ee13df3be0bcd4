#!/usr/bin/env python3
"""Smoke test of the harness and the platform, without emud.

Does by hand what emud will do for a vhost-user-blk emulator, as DESIGN.md describes it: a held
listening socket and a QMP socketpair passed to qemu-storage-daemon as fds, readiness from its
QMP greeting, chardev-add + device_add on a root port, the guest reads the disk, then device_del,
DEVICE_DELETED, chardev-remove, and the emulator is stopped and reaped. If this fails, emud's
integration tests cannot pass either, and the failure is in the platform, not in emud.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

IMG_SIZE = 16 * 1024 * 1024


def start_qsd(wd, img):
    """qemu-storage-daemon exporting img over vhost-user-blk on a listening socket we hold.

    Returns (proc, qmp, listener, sock_path). Both sockets are passed by fd number: Popen's
    pass_fds keeps the numbers, so the argv can name them directly."""
    sock_path = wd / "vhost-blk0.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen(1)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    argv = [t.QSD,
            "--blockdev", f"driver=file,node-name=file0,filename={img}",
            "--export", ("type=vhost-user-blk,id=exp0,node-name=file0,writable=on,"
                         f"addr.type=fd,addr.str={listener.fileno()}"),
            "--chardev", f"socket,id=m,fd={theirs.fileno()}",
            "--monitor", "chardev=m"]
    with open(wd / "qsd.log", "wb") as log:
        proc = subprocess.Popen(argv, pass_fds=[listener.fileno(), theirs.fileno()],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    theirs.close()
    try:
        # Readiness is the greeting: qsd sends it once its exports are set up.
        qmp = t.QMP(sock=ours, timeout=10)
    except BaseException:
        t.stop_process(proc, signal.SIGKILL)
        raise
    return proc, qmp, listener, sock_path


def test(steps):
    with t.Workdir() as wd, t.VM(wd, slots=1) as vm:
        with steps.step("guest ready"):
            boot = vm.wait_ready()
        print(f"  guest ready {boot:.1f} s after QEMU start")

        pattern = b"EMUD-PATTERN-" + secrets.token_hex(8).encode()
        img = wd / "disk0.img"
        with open(img, "wb") as f:
            f.write(pattern)
            f.truncate(IMG_SIZE)

        with steps.step("qemu-storage-daemon started, QMP greeting received"):
            t0 = time.monotonic()
            qsd, qsd_qmp, listener, sock_path = start_qsd(wd, img)
            print(f"  qsd greeting after {(time.monotonic() - t0) * 1000:.1f} ms: "
                  f"{qsd_qmp.greeting['QMP']['version']['qemu']}")
            exports = qsd_qmp.cmd("query-block-exports")
            assert [e["id"] for e in exports] == ["exp0"], exports

        try:
            with steps.step("chardev-add + device_add vhost-user-blk-pci on rp1"):
                vm.qmp.cmd("chardev-add", id="vu-blk0", backend={
                    "type": "socket",
                    "data": {"addr": {"type": "unix", "data": {"path": str(sock_path)}},
                             "server": False, "reconnect": 1}})
                vm.qmp.cmd("device_add", driver="vhost-user-blk-pci", id="blk0",
                           chardev="vu-blk0", bus="rp1")

            with steps.step("qom-list /machine/peripheral lists blk0"):
                names = [p["name"] for p in vm.qmp.cmd("qom-list", path="/machine/peripheral")]
                assert "blk0" in names, names

            with steps.step("guest sees /dev/vda"):
                rc, out = vm.run("i=0; while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do "
                                 "sleep 0.1; i=$((i+1)); done; echo polls=$i; [ -b /dev/vda ]")
                assert rc == 0, f"no /dev/vda in the guest: {out!r}"
                print(f"  {out.strip()} (0.1 s each)")

            with steps.step("guest reads the pattern from /dev/vda"):
                rc, out = vm.run(f"dd if=/dev/vda bs=512 count=1 2>/dev/null "
                                 f"| head -c {len(pattern)}")
                assert rc == 0 and out == pattern.decode(), (rc, out, pattern)

            with steps.step("device_del, DEVICE_DELETED"):
                vm.qmp.cmd("device_del", id="blk0")
                vm.qmp.wait_event("DEVICE_DELETED", timeout=30,
                                  pred=lambda e: e["data"].get("device") == "blk0")
                names = [p["name"] for p in vm.qmp.cmd("qom-list", path="/machine/peripheral")]
                assert "blk0" not in names, names

            with steps.step("guest lost /dev/vda"):
                rc, out = vm.run("[ ! -e /dev/vda ]")
                assert rc == 0, out

            with steps.step("chardev-remove"):
                vm.qmp.cmd("chardev-remove", id="vu-blk0")
                chardevs = [c["label"] for c in vm.qmp.cmd("query-chardev")]
                assert "vu-blk0" not in chardevs, chardevs

            with steps.step("qemu-storage-daemon terminated and reaped"):
                pid = qsd.pid
                rc = t.stop_process(qsd, signal.SIGTERM, timeout=10)
                assert rc == 0, f"qsd exited with {rc}"
                assert t.wait_gone(pid, 5), f"qsd pid {pid} still there: {t.proc_state(pid)}"
        finally:
            t.stop_process(qsd, signal.SIGKILL)
            qsd_qmp.close()
            listener.close()

        with steps.step("QEMU quits"):
            rc = vm.stop()
            assert rc == 0, f"QEMU exited with {rc}: {vm.qemu_log()}"


if __name__ == "__main__":
    os.umask(0o022)
    t.main(test, needs=(t.QEMU, t.QSD))
