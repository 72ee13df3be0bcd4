#!/usr/bin/env python3
"""The libvirt hook on its own, as libvirtd runs it (DOMAIN OP SUBOP -, the XML on stdin,
LC_ALL, HOME and PATH only), where no emud and no system bus answer: what it decides without
asking, and the one line it prints when it must fail. test-libvirt runs it under libvirtd.

- a domain without emud's metadata: exit 0, silent, at every operation;
- bad metadata: prepare fails with the line and the line number, before any bus is asked;
- emud unreachable: prepare and start fail with one line; started, stopped and release exit 0;
- operations emud has nothing to do with (reconnect, migrate, ...): exit 0;
- inherited descriptors are closed before anything else."""

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

HOOK = Path(os.environ.get("EMUD_HOOK_BIN") or
            Path(t.emud_bin()).resolve().parent.parent / "hooks" / "emud-libvirt-hook")
NS = "https://emud.org/xmlns/libvirt/1"
PLAIN = "<domain type='qemu' id='3'><name>vm1</name><devices/></domain>"
DECLARED = (f"<domain type='qemu' id='3'><name>vm1</name><metadata><emud:emulators "
            f"xmlns:emud='{NS}'><emud:emulator kind='vhost-user-blk' id='d0'/>"
            f"</emud:emulators></metadata></domain>")
BAD = (f"<domain type='qemu'><name>vm1</name>\n<metadata>\n<emud:emulators xmlns:emud='{NS}'>"
       f"\n<emud:emulator kind='vhost-user-blk'/></emud:emulators></metadata></domain>")


def hook(op, xml, subop="begin", pass_fds=()):
    return subprocess.run([str(HOOK), "vm1", op, subop, "-"], input=xml, capture_output=True,
                          text=True, timeout=30, pass_fds=pass_fds,
                          env={"LC_ALL": "C", "HOME": "/root", "PATH": "/usr/bin:/bin"})


def test(steps):
    if not HOOK.exists():
        t.skip(f"the hook binary {HOOK} is not built")
    bus_up = t.try_connect("/run/dbus/system_bus_socket")
    if bus_up:
        bus_up.close()

    with steps.step("no emud metadata: nothing to ask, exit 0, silent"):
        for op, sub in (("prepare", "begin"), ("start", "begin"), ("started", "begin"),
                        ("stopped", "end"), ("release", "end"), ("reconnect", "begin")):
            r = hook(op, PLAIN, sub)
            assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), (op, r)

    with steps.step("bad metadata: prepare fails with the line, no bus needed"):
        r = hook("prepare", BAD)
        assert r.returncode == 1, r
        assert r.stderr == ("emud: domain vm1: emud metadata, line 4: <emulator> needs the "
                            "attributes kind and id\n"), r.stderr
        r = hook("prepare", "<domain><name>vm1")
        assert r.returncode == 1 and r.stderr.startswith(
            "emud: domain vm1: not a libvirt domain XML"), r
        # Tearing down never fails, whatever it is given.
        assert hook("release", "<domain><name>vm1", "end").returncode == 0
        assert hook("stopped", BAD, "end").returncode == 0

    with steps.step("usage: libvirt's arguments are required"):
        r = subprocess.run([str(HOOK)], capture_output=True, text=True)
        assert r.returncode == 2 and "emud-libvirt(7)" in r.stderr, r

    with steps.step("emud unreachable: prepare and start fail in one line, the rest exit 0"):
        if bus_up:
            print("note: a system bus runs here; checking emud's absence on it")
        for op in ("prepare", "start"):
            r = hook(op, DECLARED)
            assert r.returncode == 1, (op, r)
            want = ("emud is not running" if bus_up else "no system bus")
            assert r.stderr.startswith("emud: domain vm1: ") and want in r.stderr, (op, r)
            assert r.stderr.count("\n") == 1, r.stderr
        r = hook("started", DECLARED)
        assert r.returncode == 0 and "catches up" in r.stderr, r
        for op in ("stopped", "release"):
            r = hook(op, DECLARED, "end")
            assert (r.returncode, r.stderr) == (0, ""), (op, r)

    with steps.step("descriptors libvirtd left open are closed first"):
        # The hook's own view: its /proc/self/fd while it waits for stdin.
        rfd, wfd = os.pipe()
        p = subprocess.Popen([str(HOOK), "vm1", "prepare", "begin", "-"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             pass_fds=(rfd,), env={"PATH": "/usr/bin:/bin"})
        try:
            def fds():
                try:
                    return sorted(int(f) for f in os.listdir(f"/proc/{p.pid}/fd"))
                except FileNotFoundError:
                    return None
            got = t.poll_until(lambda: fds() == [0, 1, 2] and fds(), 10,
                               f"the hook down to fds 0-2 (it has {fds()})")
            assert got == [0, 1, 2], got
        finally:
            p.communicate(PLAIN.encode(), timeout=10)
            os.close(rfd)
            os.close(wfd)
        assert p.returncode == 0


t.main(test, needs=(), guest=False)
