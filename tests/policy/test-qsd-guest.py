#!/usr/bin/env python3
"""End to end through the sandbox: a QEMU guest hot-plugs vhost-user-blk served by a confined
qemu-storage-daemon (the shipped policy enforced), reads a pattern, writes with O_DIRECT and
reads it back, unplugs, and qsd stops cleanly on SIGTERM with no seccomp report at all.
The hotplug sequence is the one of tests/integration/test-guest-smoke.py."""

import hashlib
import os
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sbtest as s  # noqa: E402
t = s.t


def test(steps):
    with t.Workdir() as wd, t.VM(wd, slots=1) as vm:
        with steps.step("guest ready"):
            vm.wait_ready()
        pattern = b"EMUD-PATTERN-" + secrets.token_hex(8).encode()
        img = s.make_image(wd, data=pattern)
        with steps.step("confined qsd started, QMP greeting received"):
            q = s.Qsd(wd, img)
        try:
            with steps.step("chardev-add + device_add vhost-user-blk-pci on rp1"):
                vm.qmp.cmd("chardev-add", id="vu-blk0", backend={
                    "type": "socket",
                    "data": {"addr": {"type": "unix", "data": {"path": str(q.sock_path)}},
                             "server": False, "reconnect": 1}})
                vm.qmp.cmd("device_add", driver="vhost-user-blk-pci", id="blk0",
                           chardev="vu-blk0", bus="rp1")
            with steps.step("guest reads the pattern from /dev/vda"):
                rc, out = vm.run("i=0; while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do "
                                 "sleep 0.1; i=$((i+1)); done; "
                                 f"dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c {len(pattern)}")
                assert rc == 0 and out == pattern.decode(), (rc, out, q.log_text())
            with steps.step("guest writes 1 MiB with O_DIRECT and the host sees it"):
                rc, out = vm.run("dd if=/dev/urandom of=/tmp/blob bs=1M count=1 2>/dev/null && "
                                 "dd if=/tmp/blob of=/dev/vda bs=1M seek=1 oflag=direct "
                                 "conv=fsync 2>/dev/null && md5sum /tmp/blob")
                assert rc == 0, (out, q.log_text())
                want = out.split()[0]
                with open(img, "rb") as f:
                    f.seek(1 << 20)
                    got = hashlib.md5(f.read(1 << 20)).hexdigest()
                assert got == want, (got, want)
            with steps.step("device_del, DEVICE_DELETED, chardev-remove"):
                vm.qmp.cmd("device_del", id="blk0")
                vm.qmp.wait_event("DEVICE_DELETED", timeout=30,
                                  pred=lambda e: e["data"].get("device") == "blk0")
                vm.qmp.cmd("chardev-remove", id="vu-blk0")
        finally:
            rc = q.stop()
        with steps.step("qsd exited 0 on SIGTERM, no syscall outside its policy"):
            assert rc == 0, (rc, q.lines, q.log_text())
            assert not any("seccomp" in ln for ln in q.lines), q.lines
        with steps.step("QEMU quits"):
            assert vm.stop() == 0


if __name__ == "__main__":
    os.umask(0o022)
    s.needs()
    t.main(test, needs=(t.QEMU, s.QSD))
